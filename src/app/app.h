// The only place that names concrete implementations: builds the object graph from the
// configuration and runs a command.
#pragma once

namespace herald::app {

// Parses argv (CLI11) and runs `serve`, `keys`, `migrate` or `vapid`. Returns the exit code.
int Main(int argc, char** argv);

}  // namespace herald::app
