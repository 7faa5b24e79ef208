// Error types and check macros for accel.
// Every accel error derives from c10::Error, so LibTorch users catch one type. Misuse of the
// library throws accel::Error via ACCEL_CHECK; distributed failures throw accel::DistributedError.
#pragma once

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>

#include <string>

namespace accel {

/// Thrown for invalid arguments, bad input files and library misuse.
class Error : public c10::Error {
 public:
  /// `msg` is the whole message (no backtrace is attached: accel messages say what to fix).
  explicit Error(std::string msg) : c10::Error(std::move(msg), /*backtrace=*/nullptr) {}
};

/// Thrown when a collective, the rendezvous or a peer rank fails (timeouts included).
class DistributedError : public Error {
 public:
  explicit DistributedError(std::string msg) : Error(std::move(msg)) {}
};

/// Thrown when a file a user provided (config, checkpoint, vocab, data) is missing or malformed.
class InputError : public Error {
 public:
  explicit InputError(std::string msg) : Error(std::move(msg)) {}
};

namespace detail {
[[noreturn]] inline void throw_error(const char* kind, const char* file, int line,
                                     const std::string& msg) {
  throw ::accel::Error(c10::str(kind, " at ", file, ":", line, ": ", msg));
}
}  // namespace detail

}  // namespace accel

/// ACCEL_CHECK(cond, parts...): throws accel::Error with the parts concatenated when cond is false.
#define ACCEL_CHECK(cond, ...)                                                              \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      throw ::accel::Error(::c10::str(__VA_ARGS__));                                        \
    }                                                                                       \
  } while (0)

/// ACCEL_CHECK_INPUT(cond, parts...): like ACCEL_CHECK for user-provided files and data.
#define ACCEL_CHECK_INPUT(cond, ...)                                                        \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      throw ::accel::InputError(::c10::str(__VA_ARGS__));                                   \
    }                                                                                       \
  } while (0)

/// ACCEL_INTERNAL_ASSERT(cond, parts...): an invariant of accel itself; failing means a bug.
#define ACCEL_INTERNAL_ASSERT(cond, ...)                                                    \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      ::accel::detail::throw_error("internal assert", __FILE__, __LINE__,                   \
                                   ::c10::str("(" #cond ") ", ##__VA_ARGS__,                \
                                              " [this is a bug in accel; please report it]")); \
    }                                                                                       \
  } while (0)
