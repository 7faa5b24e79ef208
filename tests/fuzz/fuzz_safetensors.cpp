// libFuzzer target: the safetensors reader (accel::checkpoint::SafetensorsFile::from_bytes, the
// in-memory path that the file reader shares), fed arbitrary bytes as a whole file: 8-byte
// length, JSON header, data. Every accepted file must also read back identically after
// serialize() (the writer), and every tensor view must stay inside the bytes (ASan checks it).
//
// Build and run (see scripts/fuzz.sh, which does all of this):
//   CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DACCEL_FUZZ=ON \
//       -DCMAKE_PREFIX_PATH=$(.venv/bin/python -c 'import torch;print(torch.utils.cmake_prefix_path)')
//   cmake --build build-fuzz --target fuzz_safetensors -j2
//   LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp build-fuzz/tests/fuzz/fuzz_safetensors \
//       -dict=tests/fuzz/dicts/json.dict build-fuzz/corpus/fuzz_safetensors
//       tests/fuzz/corpus/fuzz_safetensors
#include "accel/checkpoint/safetensors.h"

#include "fuzz_common.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

using namespace accel::checkpoint;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::optional<SafetensorsFile> opened;
  accel::fuzz::guarded([&] { opened.emplace(SafetensorsFile::from_bytes(bytes, "fuzz.safetensors")); });
  if (!opened) return 0;
  accel::fuzz::must_not_throw("reading an accepted file and writing it back", [&] {
    const SafetensorsFile& f = *opened;
    // Touch every byte of every tensor (out-of-range views would be caught by ASan here).
    TensorMap tensors;
    for (const auto& e : f.entries()) {
      at::Tensor t = f.tensor(e.name);
      accel::fuzz::expect(static_cast<uint64_t>(t.numel()) * t.element_size() == e.end - e.begin,
                          "tensor size matches its data_offsets");
      if (t.numel() > 0) {
        volatile uint8_t sink = 0;
        const auto* p = static_cast<const uint8_t*>(t.data_ptr());
        for (uint64_t i = 0; i < e.end - e.begin; ++i) sink = sink ^ p[i];
        (void)sink;
      }
      tensors.emplace(e.name, t);
    }
    // Round trip: what we accept, we write, and read back to the same bytes.
    const std::string again = serialize(tensors, f.metadata());
    Metadata meta2;
    TensorMap back = load_bytes(again, &meta2);
    accel::fuzz::expect(meta2 == f.metadata(), "metadata survives serialize + load_bytes");
    accel::fuzz::expect(back.size() == tensors.size(), "tensor count survives serialize + load_bytes");
    for (const auto& [name, t] : tensors) {
      auto it = back.find(name);
      accel::fuzz::expect(it != back.end(), "every tensor survives serialize + load_bytes");
      const at::Tensor& u = it->second;
      accel::fuzz::expect(u.scalar_type() == t.scalar_type() && u.sizes() == t.sizes(),
                          "dtype and shape survive serialize + load_bytes");
      const size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
      accel::fuzz::expect(nbytes == 0 || std::memcmp(u.data_ptr(), t.data_ptr(), nbytes) == 0,
                          "bytes survive serialize + load_bytes");
    }
  });
  return 0;
}
