// Test helper: a bert-tiny configuration small enough for benchmark tests (random token ids are
// drawn from [1000, vocab), positions up to 32).
#pragma once

#include "accel/models/bert.h"

namespace accel::testing {

inline accel::models::BertConfig tiny_bench_bert_config() {
  auto c = accel::models::BertConfig::from_name("bert-tiny");
  c.vocab_size = 1200;
  c.max_position_embeddings = 32;
  return c;
}

}  // namespace accel::testing
