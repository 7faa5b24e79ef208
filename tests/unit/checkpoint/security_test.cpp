// Security defaults of the weight and checkpoint readers: nothing is unpickled (a PyTorch pickle
// file is refused with a clear error, never executed), and a file that merely claims to be
// safetensors is rejected before any tensor is made.
#include "accel/checkpoint/safetensors.h"
#include "accel/core/error.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <string>
#include <unistd.h>

namespace fs = accel::fs;
using accel::test::Path;
using namespace accel;

namespace {

Path fresh_dir(const std::string& name) {
  Path d = Path(fs::temp_directory()) / ("accel_security_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The start of a protocol-2 pickle that would call os.system("touch MARKER") if unpickled.
std::string malicious_pickle(const Path& marker) {
  return std::string(
             "\x80\x02"
             "cos\nsystem\n(V") +
         "touch " + marker.string() + "\ntR.";
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return std::string("not an InputError: ") + e.what();
  }
  return "no error";
}

}  // namespace

TEST(Security, AFolderWithOnlyAPickleIsRefusedNotRead) {
  Path d = fresh_dir("pickle_folder");
  std::ofstream(d / "pytorch_model.bin", std::ios::binary) << malicious_pickle(d / "MARKER");
  const std::string msg = error_of([&] { checkpoint::Checkpoint c(d); });
  EXPECT_NE(msg.find("pickle"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(d / "MARKER"));
  fs::remove_all(d);
}

TEST(Security, APickleNamedAsSafetensorsIsRejectedAsMalformed) {
  Path d = fresh_dir("pickle_named");
  std::ofstream(d / "model.safetensors", std::ios::binary) << malicious_pickle(d / "MARKER");
  const std::string via_folder = error_of([&] { checkpoint::Checkpoint c(d); });
  const std::string via_file = error_of([&] { checkpoint::load_file(d / "model.safetensors"); });
  for (const auto& msg : {via_folder, via_file}) {
    EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("not an InputError"), std::string::npos) << msg;
    EXPECT_NE(msg, "no error");
  }
  EXPECT_FALSE(fs::exists(d / "MARKER"));
  fs::remove_all(d);
}
