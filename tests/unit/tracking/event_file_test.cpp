// CRC32C known vectors, TFRecord framing and Event protobuf encoding, checked in pure C++.
#include "accel/tracking/event_file.h"

#include "accel/core/error.h"
#include "accel/tracking/tracker.h"
#include "unit/tracking/test_util.h"

#include <gtest/gtest.h>

#include <string>

namespace accel::tracking {
namespace {

TEST(Crc32c, KnownVectors) {
  // RFC 3720 (iSCSI) appendix B.4 and the classic check value.
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string inc, dec;
  for (int i = 0; i < 32; ++i) {
    inc.push_back(static_cast<char>(i));
    dec.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc32c(inc), 0x46DD794Eu);
  EXPECT_EQ(crc32c(dec), 0x113FDB5Cu);
}

TEST(Crc32c, Incremental) {
  EXPECT_EQ(crc32c("56789", crc32c("1234")), 0xE3069283u);
}

TEST(Crc32c, Masked) {
  // mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8, as in TensorFlow's crc32c.h.
  std::uint32_t c = 0xE3069283u;
  EXPECT_EQ(masked_crc32c("123456789"), ((c >> 15) | (c << 17)) + 0xa282ead8u);
  EXPECT_EQ(masked_crc32c(""), 0xa282ead8u);
}

TEST(TfRecord, FrameLayoutAndSplit) {
  std::string rec = frame_record("hello");
  ASSERT_EQ(rec.size(), 8u + 4u + 5u + 4u);
  EXPECT_EQ(static_cast<unsigned char>(rec[0]), 5u);  // little-endian uint64 length
  for (int i = 1; i < 8; ++i) EXPECT_EQ(rec[i], '\0');
  EXPECT_EQ(rec.substr(12, 5), "hello");
  std::string stream = rec + frame_record("") + frame_record(std::string(300, 'x'));
  auto parts = split_records(stream);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], "hello");
  EXPECT_EQ(parts[1], "");
  EXPECT_EQ(parts[2], std::string(300, 'x'));
}

TEST(TfRecord, TruncatedTailIgnoredCorruptionThrows) {
  std::string stream = frame_record("first") + frame_record("second");
  auto cut = stream.substr(0, stream.size() - 3);  // a writer caught mid-record
  auto parts = split_records(cut);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0], "first");
  std::string bad = stream;
  bad[14] ^= 0x01;  // flip a bit inside "first"
  EXPECT_THROW(split_records(bad), accel::Error);
  std::string bad_len = stream;
  bad_len[0] ^= 0x01;  // the length no longer matches its CRC
  EXPECT_THROW(split_records(bad_len), accel::Error);
}

TEST(EventProto, KnownBytesForFileVersionEvent) {
  Event e;
  e.wall_time = 1.5;
  e.file_version = "brain.Event:2";
  std::string b = encode_event(e);
  // field 1, wire type 1 (0x09) + 1.5 as little-endian double; field 3, wire type 2 (0x1a).
  std::string expect = std::string("\x09\x00\x00\x00\x00\x00\x00\xf8\x3f", 9) + "\x1a\x0d" +
                       "brain.Event:2";
  EXPECT_EQ(b, expect);
}

TEST(EventProto, KnownBytesForScalar) {
  Event e;
  e.wall_time = 0.0;
  e.step = 300;  // varint 0xac 0x02
  e.values.push_back(SummaryValue{"a", 1.0f, std::nullopt, ""});
  std::string b = encode_event(e);
  // Value{tag=1 "a", simple_value=2 fixed32 1.0f (0x3f800000)}: 0a 01 61 15 00 00 80 3f (8 bytes)
  // Summary{value=1 len 8} = 0a 08 ...; Event.summary = field 5 wt 2 = 0x2a, len 10.
  std::string expect = std::string("\x09\0\0\0\0\0\0\0\0", 9) + "\x10\xac\x02" + "\x2a\x0a" +
                       "\x0a\x08" + "\x0a\x01" "a" + std::string("\x15\x00\x00\x80\x3f", 5);
  EXPECT_EQ(b, expect);
}

TEST(EventProto, RoundTrip) {
  Event e;
  e.wall_time = 1718000000.125;
  e.step = -7;  // negative steps encode as 10-byte varints
  e.values.push_back(SummaryValue{"loss", 0.25f, std::nullopt, ""});
  e.values.push_back(SummaryValue{"note", std::nullopt, std::string("hi | there\n"), "text"});
  Event d = decode_event(encode_event(e));
  EXPECT_EQ(d.wall_time, e.wall_time);
  EXPECT_EQ(d.step, -7);
  EXPECT_TRUE(d.file_version.empty());
  ASSERT_EQ(d.values.size(), 2u);
  EXPECT_EQ(d.values[0].tag, "loss");
  EXPECT_EQ(d.values[0].simple_value, 0.25f);
  EXPECT_FALSE(d.values[0].text);
  EXPECT_EQ(d.values[1].tag, "note");
  EXPECT_EQ(d.values[1].text, "hi | there\n");
  EXPECT_EQ(d.values[1].plugin_name, "text");
  EXPECT_FALSE(d.values[1].simple_value);
}

TEST(EventProto, MalformedThrows) {
  EXPECT_THROW(decode_event(std::string("\x2a\x7f", 2)), accel::Error);  // length past end
  EXPECT_THROW(decode_event(std::string("\x09\x00", 2)), accel::Error);  // truncated double
}

TEST(EventFileName, Format) {
  auto a = event_file_name(1718000000);
  auto b = event_file_name(12);
  EXPECT_EQ(a.rfind("events.out.tfevents.1718000000.", 0), 0u) << a;
  EXPECT_EQ(b.rfind("events.out.tfevents.0000000012.", 0), 0u) << b;
  EXPECT_NE(a.substr(a.rfind('.')), b.substr(b.rfind('.')));  // counters differ
  EXPECT_NE(a.find("." + std::to_string(getpid()) + "."), std::string::npos) << a;
}

TEST(TensorBoardTracker, OwnRecordsDecode) {
  test::TempDir tmp;
  TensorBoardTracker tb(tmp.str());
  tb.start("run", {{"lr", 5e-5}, {"model", "bert"}});
  tb.log({{"loss", 0.5}, {"epoch", 2}, {"phase", "train"}}, 10);
  tb.log({{"loss", 0.25}}, 20);
  auto path = tb.path();
  // Readable while the run is still going (flushed after each log).
  auto live = read_event_file(path);
  EXPECT_EQ(live.size(), 4u);
  tb.finish();
  auto name = accel::fs::filename(path);
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u);
  EXPECT_EQ(accel::fs::parent(path), (tmp.path() / "run").string());

  auto events = read_event_file(path);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_TRUE(events[0].values.empty());
  EXPECT_GT(events[0].wall_time, 1.5e9);
  // Config: a text summary at step 0.
  ASSERT_EQ(events[1].values.size(), 1u);
  EXPECT_EQ(events[1].step, 0);
  EXPECT_EQ(events[1].values[0].tag, "config");
  EXPECT_EQ(events[1].values[0].plugin_name, "text");
  EXPECT_EQ(*events[1].values[0].text,
            "| name | value |\n| --- | --- |\n| lr | 5e-05 |\n| model | bert |\n");
  // Values: keys sorted, numbers as float scalars, strings as text.
  EXPECT_EQ(events[2].step, 10);
  ASSERT_EQ(events[2].values.size(), 3u);
  EXPECT_EQ(events[2].values[0].tag, "epoch");
  EXPECT_EQ(events[2].values[0].simple_value, 2.0f);
  EXPECT_EQ(events[2].values[1].tag, "loss");
  EXPECT_EQ(events[2].values[1].simple_value, 0.5f);
  EXPECT_EQ(events[2].values[2].tag, "phase");
  EXPECT_EQ(events[2].values[2].text, "train");
  EXPECT_EQ(events[3].step, 20);
  EXPECT_EQ(events[3].values[0].simple_value, 0.25f);
}

}  // namespace
}  // namespace accel::tracking
