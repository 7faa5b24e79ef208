// CRC32C, TFRecord framing and hand-encoded tensorboard.Event protobufs (see event_file.h).
// Field numbers follow tensorboard/compat/proto/{event,summary,tensor,tensor_shape}.proto.
#include "accel/tracking/event_file.h"

#include "accel/core/error.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace accel::tracking {

namespace {

// Byte-wise table for the reflected Castagnoli polynomial.
constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_crc_table();

constexpr std::uint32_t kMaskDelta = 0xa282ead8u;

// Protobuf wire types.
constexpr int kVarint = 0;
constexpr int kFixed64 = 1;
constexpr int kLengthDelimited = 2;
constexpr int kFixed32 = 5;

// tensorflow DataType DT_STRING.
constexpr int kDtString = 7;

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_tag(std::string& out, int field, int wire_type) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(wire_type));
}

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_tag(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

std::string encode_value(const SummaryValue& v) {
  std::string out;
  put_bytes(out, 1, v.tag);  // Summary.Value.tag
  if (v.simple_value) {
    put_tag(out, 2, kFixed32);  // Summary.Value.simple_value (float)
    std::uint32_t bits;
    float f = *v.simple_value;
    std::memcpy(&bits, &f, 4);
    put_le(out, bits, 4);
  }
  if (v.text) {
    std::string tensor;  // TensorProto
    put_tag(tensor, 1, kVarint);  // dtype
    put_varint(tensor, kDtString);
    put_bytes(tensor, 2, "");  // tensor_shape: {} (a scalar)
    put_bytes(tensor, 8, *v.text);  // string_val
    put_bytes(out, 8, tensor);  // Summary.Value.tensor
  }
  if (!v.plugin_name.empty()) {
    std::string plugin_data;  // SummaryMetadata.PluginData
    put_bytes(plugin_data, 1, v.plugin_name);  // plugin_name
    std::string metadata;  // SummaryMetadata
    put_bytes(metadata, 1, plugin_data);
    put_bytes(out, 9, metadata);  // Summary.Value.metadata
  }
  return out;
}

// A cursor over protobuf bytes.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool done() const { return pos_ >= s_.size(); }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      ACCEL_CHECK(pos_ < s_.size(), "decode_event: truncated varint at byte ", pos_);
      auto b = static_cast<unsigned char>(s_[pos_++]);
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    ACCEL_CHECK(false, "decode_event: varint longer than 10 bytes at byte ", pos_);
    return 0;
  }
  std::uint64_t fixed(int bytes) {
    ACCEL_CHECK(pos_ + bytes <= s_.size(), "decode_event: truncated fixed", bytes * 8,
                " at byte ", pos_);
    auto v = get_le(s_.data() + pos_, bytes);
    pos_ += bytes;
    return v;
  }
  std::string_view bytes() {
    auto n = varint();
    ACCEL_CHECK(n <= s_.size() - pos_, "decode_event: length ", n, " runs past the end at byte ",
                pos_);
    auto v = s_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  void skip(int wire_type) {
    switch (wire_type) {
      case kVarint: varint(); break;
      case kFixed64: fixed(8); break;
      case kLengthDelimited: bytes(); break;
      case kFixed32: fixed(4); break;
      default: ACCEL_CHECK(false, "decode_event: unsupported wire type ", wire_type);
    }
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

std::string decode_plugin_name(std::string_view metadata) {
  Reader r(metadata);
  std::string name;
  while (!r.done()) {
    auto key = r.varint();
    int field = static_cast<int>(key >> 3), wt = static_cast<int>(key & 7);
    if (field == 1 && wt == kLengthDelimited) {
      Reader pd(r.bytes());
      while (!pd.done()) {
        auto k2 = pd.varint();
        if ((k2 >> 3) == 1 && (k2 & 7) == kLengthDelimited) {
          name = std::string(pd.bytes());
        } else {
          pd.skip(static_cast<int>(k2 & 7));
        }
      }
    } else {
      r.skip(wt);
    }
  }
  return name;
}

std::optional<std::string> decode_tensor_text(std::string_view tensor) {
  Reader r(tensor);
  std::optional<std::string> text;
  while (!r.done()) {
    auto key = r.varint();
    int field = static_cast<int>(key >> 3), wt = static_cast<int>(key & 7);
    if (field == 8 && wt == kLengthDelimited) {
      auto s = r.bytes();
      if (!text) text = std::string(s);
    } else {
      r.skip(wt);
    }
  }
  return text;
}

SummaryValue decode_value(std::string_view bytes) {
  Reader r(bytes);
  SummaryValue v;
  while (!r.done()) {
    auto key = r.varint();
    int field = static_cast<int>(key >> 3), wt = static_cast<int>(key & 7);
    if (field == 1 && wt == kLengthDelimited) {
      v.tag = std::string(r.bytes());
    } else if (field == 2 && wt == kFixed32) {
      auto bits = static_cast<std::uint32_t>(r.fixed(4));
      float f;
      std::memcpy(&f, &bits, 4);
      v.simple_value = f;
    } else if (field == 8 && wt == kLengthDelimited) {
      v.text = decode_tensor_text(r.bytes());
    } else if (field == 9 && wt == kLengthDelimited) {
      v.plugin_name = decode_plugin_name(r.bytes());
    } else {
      r.skip(wt);
    }
  }
  return v;
}

}  // namespace

std::uint32_t crc32c(std::string_view data, std::uint32_t crc) {
  crc = ~crc;
  for (unsigned char b : data) crc = kCrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

std::uint32_t masked_crc32c(std::string_view data) {
  std::uint32_t crc = crc32c(data);
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}

std::string frame_record(std::string_view data) {
  std::string header;
  put_le(header, data.size(), 8);
  std::string out = header;
  put_le(out, masked_crc32c(header), 4);
  out.append(data.data(), data.size());
  put_le(out, masked_crc32c(data), 4);
  return out;
}

std::vector<std::string> split_records(std::string_view stream) {
  std::vector<std::string> records;
  std::size_t pos = 0;
  while (stream.size() - pos >= 12) {
    auto header = stream.substr(pos, 8);
    auto len = get_le(header.data(), 8);
    auto header_crc = static_cast<std::uint32_t>(get_le(stream.data() + pos + 8, 4));
    ACCEL_CHECK(header_crc == masked_crc32c(header), "TFRecord at byte ", pos,
                ": the length's CRC does not match (corrupt file)");
    if (len > stream.size() - pos - 12 || stream.size() - pos - 12 - len < 4) break;  // truncated
    auto data = stream.substr(pos + 12, len);
    auto data_crc = static_cast<std::uint32_t>(get_le(stream.data() + pos + 12 + len, 4));
    ACCEL_CHECK(data_crc == masked_crc32c(data), "TFRecord at byte ", pos,
                ": the data's CRC does not match (corrupt file)");
    records.emplace_back(data);
    pos += 12 + len + 4;
  }
  return records;
}

std::string encode_event(const Event& event) {
  std::string out;
  put_tag(out, 1, kFixed64);  // wall_time (double)
  std::uint64_t bits;
  std::memcpy(&bits, &event.wall_time, 8);
  put_le(out, bits, 8);
  if (event.step != 0) {
    put_tag(out, 2, kVarint);  // step (int64, two's complement varint)
    put_varint(out, static_cast<std::uint64_t>(event.step));
  }
  if (!event.file_version.empty()) put_bytes(out, 3, event.file_version);
  if (!event.values.empty()) {
    std::string summary;
    for (const auto& v : event.values) put_bytes(summary, 1, encode_value(v));  // Summary.value
    put_bytes(out, 5, summary);  // Event.summary
  }
  return out;
}

Event decode_event(std::string_view bytes) {
  Reader r(bytes);
  Event e;
  while (!r.done()) {
    auto key = r.varint();
    int field = static_cast<int>(key >> 3), wt = static_cast<int>(key & 7);
    if (field == 1 && wt == kFixed64) {
      auto bits = r.fixed(8);
      std::memcpy(&e.wall_time, &bits, 8);
    } else if (field == 2 && wt == kVarint) {
      e.step = static_cast<std::int64_t>(r.varint());
    } else if (field == 3 && wt == kLengthDelimited) {
      e.file_version = std::string(r.bytes());
    } else if (field == 5 && wt == kLengthDelimited) {
      Reader s(r.bytes());
      while (!s.done()) {
        auto k = s.varint();
        if ((k >> 3) == 1 && (k & 7) == kLengthDelimited) {
          e.values.push_back(decode_value(s.bytes()));
        } else {
          s.skip(static_cast<int>(k & 7));
        }
      }
    } else {
      r.skip(wt);
    }
  }
  return e;
}

std::vector<Event> read_event_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ACCEL_CHECK_INPUT(in.good(), "read_event_file: cannot open '", path,
                    "'. HINT: check the path; event files are named events.out.tfevents.*");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string data = ss.str();
  std::vector<Event> events;
  for (const auto& rec : split_records(data)) events.push_back(decode_event(rec));
  return events;
}

std::string event_file_name(std::int64_t unix_time) {
  static std::atomic<std::int64_t> counter{0};
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') std::strcpy(host, "localhost");
  char buf[400];
  std::snprintf(buf, sizeof(buf), "events.out.tfevents.%010lld.%s.%lld.%lld",
                static_cast<long long>(unix_time), host, static_cast<long long>(getpid()),
                static_cast<long long>(counter.fetch_add(1)));
  return buf;
}

}  // namespace accel::tracking
