// TensorBoard event files without TensorFlow: CRC32C, TFRecord framing and the few protobuf
// messages TensorBoard needs (Event, Summary, text summaries), hand-encoded; plus a reader that
// checks every CRC and decodes what accel writes (for tests and tools).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace accel::tracking {

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `data`, continuing from `crc`
/// (pass the previous result to checksum data in pieces; 0 to begin). crc32c("123456789") ==
/// 0xE3069283.
std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0);

/// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8, of crc32c(data).
std::uint32_t masked_crc32c(std::string_view data);

/// One TFRecord: uint64 little-endian length, masked CRC of those 8 bytes, the data, masked CRC
/// of the data.
std::string frame_record(std::string_view data);

/// Splits a TFRecord stream into its records, checking both CRCs of each. A truncated last
/// record (a file still being written) is ignored; a CRC mismatch throws accel::Error naming
/// the record's offset.
std::vector<std::string> split_records(std::string_view stream);

/// One value of a Summary as accel writes it: a scalar or a text.
struct SummaryValue {
  std::string tag;
  std::optional<float> simple_value;  // set for scalars
  std::optional<std::string> text;    // set for text summaries (tensor string_val[0])
  std::string plugin_name;            // SummaryMetadata.plugin_data.plugin_name ("text" or "")
};

/// The fields of tensorboard.Event that accel writes.
struct Event {
  double wall_time = 0;
  std::int64_t step = 0;
  std::string file_version;  // "brain.Event:2" on the first event of a file
  std::vector<SummaryValue> values;
};

/// Serialises an Event to protobuf bytes (wall_time=1 double, step=2 int64, file_version=3,
/// summary=5 {value=1 {tag=1, simple_value=2 float | metadata=9 + tensor=8 DT_STRING}}).
std::string encode_event(const Event& event);

/// Parses protobuf bytes of an Event; unknown fields are skipped. Throws accel::Error on
/// malformed input.
Event decode_event(std::string_view bytes);

/// Reads and decodes every event of an event file (CRCs checked). Throws accel::InputError if
/// the file cannot be read.
std::vector<Event> read_event_file(const std::string& path);

/// `events.out.tfevents.<unix time, 10 digits>.<hostname>.<pid>.<counter>`; the counter goes up
/// by one per call in this process, so two writers never share a name.
std::string event_file_name(std::int64_t unix_time);

}  // namespace accel::tracking
