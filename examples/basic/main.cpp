// Basic example: a small MLP trained with a plain LibTorch loop and with the same loop on accel.
//
// Build:  bash scripts/setup.sh            (builds build/bin/basic)
// Run:    build/bin/basic [--mode plain|accel|both] [--mixed_precision no|bf16|fp16]
//                                    [--epochs N] [--batch_size B] [--samples N]
//         accel launch --num_processes 2 build/bin/basic --mode accel
// Prints the loss per epoch and the throughput of each loop.
#include "common.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

int main(int argc, char** argv) {
  basic::Args args;
  std::string mode = "both";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "basic: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--mode") mode = value();
    else if (a == "--mixed_precision" || a == "--mixed-precision") {
      // Same as `accel launch --mixed_precision X`: the Accelerator reads it from the environment.
      ::setenv("ACCELERATE_MIXED_PRECISION", value().c_str(), 1);
    }
    else if (a == "--epochs") args.epochs = std::atoi(value().c_str());
    else if (a == "--batch_size" || a == "--batch-size") args.batch_size = std::atoll(value().c_str());
    else if (a == "--samples") args.samples = std::atoll(value().c_str());
    else if (a == "--quiet") args.quiet = true;
    else {
      std::fprintf(stderr, "basic: unknown option '%s' (options: --mode plain|accel|both, "
                   "--mixed_precision no|bf16|fp16, --epochs N, --batch_size B, --samples N, --quiet)\n", a.c_str());
      return 2;
    }
  }
  try {
    if (mode == "plain" || mode == "both") {
      auto r = basic::train_plain(args);
      std::printf("plain LibTorch: final loss %.4f, %.0f samples/s, %.3f ms/step\n", r.final_loss,
                  r.samples_per_s, r.step_ms);
    }
    if (mode == "accel" || mode == "both") {
      auto r = basic::train_accel(args);
      const char* mp = std::getenv("ACCELERATE_MIXED_PRECISION");
      std::printf("accel (%s): final loss %.4f, %.0f samples/s, %.3f ms/step\n", mp ? mp : "no",
                  r.final_loss, r.samples_per_s, r.step_ms);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "basic: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
