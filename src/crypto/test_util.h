// Helpers for the crypto tests: base64url test vectors, and the openssl command-line tool. Test
// code only.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "crypto/crypto.h"

namespace herald::crypto::test_util {

// The bytes of a base64url test vector (a test failure if it does not decode).
inline std::string B64(std::string_view text) {
  std::optional<std::string> raw = Base64UrlDecode(text);
  EXPECT_TRUE(raw.has_value()) << text;
  return raw.value_or("");
}

// True if an `openssl` executable is on PATH.
inline bool HaveOpensslCli() {
  static const bool have = std::system("command -v openssl >/dev/null 2>&1") == 0;
  return have;
}

// Runs `command` through /bin/sh with its output discarded; its exit status.
inline int RunQuietly(const std::string& command) {
  int status = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A fresh directory under the system temp directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "herald-crypto-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The path of `name` inside the directory, quoted for the shell (the name itself is plain).
  std::string File(std::string_view name) const { return (path_ / name).string(); }
  std::string Quoted(std::string_view name) const { return "'" + File(name) + "'"; }

  void Write(std::string_view name, std::string_view data) const {
    std::ofstream out(File(name), std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  std::string Read(std::string_view name) const {
    std::ifstream in(File(name), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

 private:
  std::filesystem::path path_;
};

}  // namespace herald::crypto::test_util
