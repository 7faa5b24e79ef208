// The one /proc/cpuinfo parser (core/state.h) and the CPU capability checks built on it.
#include "accel/core/state.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

using namespace accel;

namespace {

// Two logical CPUs of one physical core each, on one socket (an x86 VM without bf16/fp16).
const char* kX86Avx2 =
    "processor\t: 0\n"
    "vendor_id\t: AuthenticAMD\n"
    "model\t\t: 1\n"
    "model name\t: AMD EPYC 7B13\n"
    "physical id\t: 0\n"
    "core id\t\t: 0\n"
    "flags\t\t: fpu sse2 avx avx2 fma f16c\n"
    "vmx flags\t: avx512_bf16\n"
    "\n"
    "processor\t: 1\n"
    "model name\t: AMD EPYC 7B13\n"
    "physical id\t: 0\n"
    "core id\t\t: 1\n"
    "flags\t\t: fpu sse2 avx avx2 fma f16c\n";

// Sapphire Rapids: AMX with bf16 and fp16, two sockets, hyper-threads sharing core ids.
const char* kX86Amx =
    "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nphysical id\t: 0\ncore id\t\t: 0\n"
    "flags\t\t: avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8\n\n"
    "processor\t: 1\nphysical id\t: 0\ncore id\t\t: 0\n\n"
    "processor\t: 2\nphysical id\t: 1\ncore id\t\t: 0\n";

// Neoverse V1 (Graviton 3): "Features" instead of "flags", no model name, no core ids.
const char* kArm =
    "processor\t: 0\nBogoMIPS\t: 2100.00\n"
    "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid bf16 i8mm\n"
    "CPU implementer\t: 0x41\n\n";

}  // namespace

TEST(CpuInfo, ParsesX86ModelFlagsAndPhysicalCores) {
  const CpuInfo info = parse_cpuinfo(kX86Avx2);
  EXPECT_EQ(info.model_name, "AMD EPYC 7B13");  // not the "model" line
  EXPECT_EQ(info.physical_cores, 2);
  EXPECT_TRUE(info.flags.count("avx2"));
  EXPECT_FALSE(info.flags.count("avx512_bf16")) << "read from 'vmx flags', which is not 'flags'";
  EXPECT_FALSE(cpu_has_native_bf16(info));
  EXPECT_FALSE(cpu_has_native_fp16(info));
}

TEST(CpuInfo, NativeBf16AndFp16OnAmx) {
  const CpuInfo info = parse_cpuinfo(kX86Amx);
  EXPECT_EQ(info.model_name, "Intel(R) Xeon(R) Platinum 8480+");
  EXPECT_EQ(info.physical_cores, 2) << "(socket, core) pairs, hyper-threads counted once";
  EXPECT_TRUE(cpu_has_native_bf16(info));
  EXPECT_TRUE(cpu_has_native_fp16(info));
  // Only the flag itself counts, not a prefix of another one.
  EXPECT_FALSE(cpu_has_native_bf16(parse_cpuinfo("flags\t: avx512_bf16x amx_bf16_\n")));
  EXPECT_TRUE(cpu_has_native_bf16(parse_cpuinfo("flags\t: avx2 avx512_bf16\n")));
  EXPECT_FALSE(cpu_has_native_fp16(parse_cpuinfo("flags\t: avx2 avx512_bf16\n")));
}

TEST(CpuInfo, ArmFeatures) {
  const CpuInfo info = parse_cpuinfo(kArm);
  EXPECT_EQ(info.model_name, "");
  EXPECT_EQ(info.physical_cores, 0);
  EXPECT_TRUE(cpu_has_native_bf16(info));
  EXPECT_TRUE(cpu_has_native_fp16(info));
  EXPECT_FALSE(cpu_has_native_bf16(parse_cpuinfo("Features\t: fp asimd asimdhp\n")));
}

TEST(CpuInfo, EmptyOrMalformedTextGivesEmptyFields) {
  for (const char* text : {"", "garbage without colons\n", "core id\t: x\nflags:\n"}) {
    const CpuInfo info = parse_cpuinfo(text);
    EXPECT_EQ(info.model_name, "") << text;
    EXPECT_TRUE(info.flags.empty()) << text;
    EXPECT_EQ(info.physical_cores, 0) << text;
  }
}

TEST(CpuInfo, ThisMachineIsReadFromProcCpuinfo) {
  std::ifstream in("/proc/cpuinfo");
  if (!in) GTEST_SKIP() << "no /proc/cpuinfo here";
  std::ostringstream text;
  text << in.rdbuf();
  const CpuInfo fresh = parse_cpuinfo(text.str());
  EXPECT_EQ(cpu_info().model_name, fresh.model_name);
  EXPECT_EQ(cpu_info().flags, fresh.flags);
  EXPECT_EQ(cpu_info().physical_cores, fresh.physical_cores);
  EXPECT_FALSE(cpu_info().flags.empty()) << "every Linux CPU lists some flags or features";
}
