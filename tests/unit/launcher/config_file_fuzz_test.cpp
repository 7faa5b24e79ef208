// Regression tests for what fuzzing the config loader found (tests/fuzz/fuzz_config.cpp; the
// crashing inputs are in tests/fuzz/regressions/fuzz_config/).
#include "accel/launcher/config_file.h"

#include "accel/core/error.h"

#include <gtest/gtest.h>

#include <string>

using accel::launcher::ClusterConfig;
using accel::launcher::parse_config_text;

// Invalid UTF-8 used to reach yaml-cpp, and the legacy dynamo_backend migration re-parsed it as an
// invalid "\U001FFFFF" escape: a YAML::ParserException escaped parse_config_text.
TEST(ConfigFileFuzz, InvalidUtf8IsAnInputErrorWithLineAndColumn) {
  const std::string text = "distributed_type: NO\ndynamo_backend: INDUCTOR\xff\xff\nfp16: true\n";
  try {
    parse_config_text(text, "c.yaml");
    FAIL() << "expected accel::InputError";
  } catch (const accel::InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("c.yaml:2:25"), std::string::npos) << msg;
    EXPECT_NE(msg.find("not valid UTF-8"), std::string::npos) << msg;
    EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  }
  // Overlong forms, surrogates and truncated sequences are rejected too; real UTF-8 is accepted.
  for (const std::string bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    EXPECT_THROW(parse_config_text("distributed_type: NO\nmain_process_ip: x" + bad + "\n", "c.yaml"),
                 accel::InputError);
  }
  ClusterConfig c = parse_config_text(
      "distributed_type: NO\nmain_process_ip: h\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\n", "c.yaml");
  EXPECT_EQ(*c.main_process_ip, "h\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80");
  EXPECT_EQ(*parse_config_text(accel::launcher::config_to_yaml(c), "again.yaml").main_process_ip,
            *c.main_process_ip);
}

// A legacy dynamo_backend with non-ASCII text is migrated to dynamo_config and written back.
TEST(ConfigFileFuzz, LegacyDynamoBackendWithNonAsciiRoundTrips) {
  ClusterConfig c = parse_config_text("distributed_type: NO\ndynamo_backend: IND\xc3\x9c\n", "c.yaml");
  EXPECT_EQ(accel::launcher::passthrough_scalar(c, "dynamo_config", "dynamo_backend"), "IND\xc3\x9c");
  ClusterConfig again = parse_config_text(accel::launcher::config_to_yaml(c), "again.yaml");
  EXPECT_EQ(accel::launcher::passthrough_scalar(again, "dynamo_config", "dynamo_backend"), "IND\xc3\x9c");
}

// A passthrough key of 128+ characters is written as an explicit "? key" pair (as PyYAML does):
// as an implicit key it could pass YAML's 1024-character limit once escaped, and the file accel
// wrote could not be read back.
TEST(ConfigFileFuzz, LongPassthroughKeysAreWrittenAsExplicitKeys) {
  const std::string text = "distributed_type: FSDP\nfsdp_config:\n  \"" + std::string(200, 'x') +
                           "\\x16\": [1, {a: b}]\n  short: 2\n";
  ClusterConfig c = parse_config_text(text, "c.yaml");
  const std::string yaml = accel::launcher::config_to_yaml(c);
  EXPECT_NE(yaml.find("? \"xxx"), std::string::npos) << yaml;
  ClusterConfig again = parse_config_text(yaml, "again.yaml");
  EXPECT_EQ(again.passthrough.at("fsdp_config"), c.passthrough.at("fsdp_config"));
  EXPECT_EQ(accel::launcher::passthrough_scalar(again, "fsdp_config", "short"), "2");
}

// yaml-cpp decodes the double-quoted escapes "\_" and "\N" to the raw bytes 0xA0 / 0x85 (not
// UTF-8); accel re-encodes them as U+00A0 / U+0085, so a value survives save and load.
TEST(ConfigFileFuzz, NbspAndNelEscapesReadAsUtf8) {
  ClusterConfig c = parse_config_text("distributed_type: NO\nmain_process_ip: \"a\\_b\\Nc\"\n", "c.yaml");
  EXPECT_EQ(*c.main_process_ip,
            "a\xc2\xa0"
            "b\xc2\x85"
            "c");
  EXPECT_EQ(*parse_config_text(accel::launcher::config_to_yaml(c), "again.yaml").main_process_ip,
            *c.main_process_ip);
}
