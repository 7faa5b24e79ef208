// Helpers shared by the tracking tests: a fresh temporary folder per test and file reading.
#pragma once

#include "support/temp_dir.h"

#include <string>

namespace accel::tracking::test {

/// A new empty folder under the system temp dir, removed when the object goes away.
class TempDir : public accel::test::TempDir {
 public:
  TempDir() : accel::test::TempDir("tracking") {}
};

using accel::test::read_file;

}  // namespace accel::tracking::test
