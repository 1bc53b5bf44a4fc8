#include "app/app.h"

int main(int argc, char** argv) { return herald::app::Main(argc, argv); }
