// Samplers, Accelerate's batch sharding (golden cases from accelerate's tests/test_data_loader.py)
// and the loader (look-ahead, prefetch threads, resume position). Tier 1: ranks are parameters.
#include "accel/data/loader.h"
#include "accel/data/sampler.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

using namespace accel::data;

namespace {

Batches shard_range(int64_t n, int64_t bs, int rank, int world, bool drop_last = false, bool split = false,
                    bool even = true) {
  Batches all = make_batches(SequentialSampler(n).indices(0), bs, drop_last);
  ShardSpec s;
  s.rank = rank;
  s.world_size = world;
  s.drop_last = drop_last;
  s.split_batches = split;
  s.even_batches = even;
  return shard_batches(all, bs, s);
}

}  // namespace

TEST(BatchSamplerShard, GoldenRange24) {
  EXPECT_EQ(shard_range(24, 3, 0, 2), (Batches{{0, 1, 2}, {6, 7, 8}, {12, 13, 14}, {18, 19, 20}}));
  EXPECT_EQ(shard_range(24, 3, 1, 2), (Batches{{3, 4, 5}, {9, 10, 11}, {15, 16, 17}, {21, 22, 23}}));
}

TEST(BatchSamplerShard, GoldenRange21CyclesToTheStart) {
  EXPECT_EQ(shard_range(21, 3, 0, 2), (Batches{{0, 1, 2}, {6, 7, 8}, {12, 13, 14}, {18, 19, 20}}));
  EXPECT_EQ(shard_range(21, 3, 1, 2), (Batches{{3, 4, 5}, {9, 10, 11}, {15, 16, 17}, {0, 1, 2}}));
  // drop_last: the incomplete round disappears.
  EXPECT_EQ(shard_range(21, 3, 0, 2, true), (Batches{{0, 1, 2}, {6, 7, 8}, {12, 13, 14}}));
  EXPECT_EQ(shard_range(21, 3, 1, 2, true), (Batches{{3, 4, 5}, {9, 10, 11}, {15, 16, 17}}));
}

TEST(BatchSamplerShard, GoldenRange22And20) {
  EXPECT_EQ(shard_range(22, 3, 0, 2), (Batches{{0, 1, 2}, {6, 7, 8}, {12, 13, 14}, {18, 19, 20}}));
  EXPECT_EQ(shard_range(22, 3, 1, 2), (Batches{{3, 4, 5}, {9, 10, 11}, {15, 16, 17}, {21, 0, 1}}));
  EXPECT_EQ(shard_range(20, 3, 0, 2), (Batches{{0, 1, 2}, {6, 7, 8}, {12, 13, 14}, {18, 19, 0}}));
  EXPECT_EQ(shard_range(20, 3, 1, 2), (Batches{{3, 4, 5}, {9, 10, 11}, {15, 16, 17}, {1, 2, 3}}));
}

TEST(BatchSamplerShard, GoldenTinyDataset) {
  EXPECT_EQ(shard_range(2, 3, 0, 2), (Batches{{0, 1, 0}}));
  EXPECT_EQ(shard_range(2, 3, 1, 2), (Batches{{1, 0, 1}}));
  EXPECT_EQ(shard_range(2, 3, 0, 2, true), Batches{});
}

TEST(BatchSamplerShard, EvenBatchesOff) {
  EXPECT_EQ(shard_range(21, 3, 0, 2, false, false, false),
            (Batches{{0, 1, 2}, {6, 7, 8}, {12, 13, 14}, {18, 19, 20}}));
  EXPECT_EQ(shard_range(21, 3, 1, 2, false, false, false), (Batches{{3, 4, 5}, {9, 10, 11}, {15, 16, 17}}));
  EXPECT_EQ(shard_range(22, 3, 1, 2, false, false, false),
            (Batches{{3, 4, 5}, {9, 10, 11}, {15, 16, 17}, {21}}));
  // Distributed data loop counts: 3 samples bs 1 -> [1,1] vs [1]; 7 samples bs 2 -> [2,2] vs [2,1].
  EXPECT_EQ(shard_range(3, 1, 0, 2).size(), 2u);
  EXPECT_EQ(shard_range(3, 1, 1, 2).size(), 2u);
  EXPECT_EQ(shard_range(3, 1, 1, 2, false, false, false).size(), 1u);
  auto r1 = shard_range(7, 2, 1, 2, false, false, false);
  ASSERT_EQ(r1.size(), 2u);
  EXPECT_EQ(r1[1].size(), 1u);
  EXPECT_EQ(shard_range(7, 2, 1, 2)[1].size(), 2u);
}

TEST(BatchSamplerShard, SplitBatches) {
  EXPECT_EQ(shard_range(24, 4, 0, 2, false, true),
            (Batches{{0, 1}, {4, 5}, {8, 9}, {12, 13}, {16, 17}, {20, 21}}));
  EXPECT_EQ(shard_range(24, 4, 1, 2, false, true),
            (Batches{{2, 3}, {6, 7}, {10, 11}, {14, 15}, {18, 19}, {22, 23}}));
  // 22 samples, global batch 4: last batch [20, 21] padded with [0, 1].
  EXPECT_EQ(shard_range(22, 4, 0, 2, false, true).back(), (Indices{20, 21}));
  EXPECT_EQ(shard_range(22, 4, 1, 2, false, true).back(), (Indices{0, 1}));
  EXPECT_EQ(shard_range(21, 4, 1, 2, false, true).back(), (Indices{1, 2}));  // [20] + [0, 1, 2, ...]
  EXPECT_EQ(shard_range(21, 4, 0, 2, false, true).back(), (Indices{20, 0}));
  // even_batches off: rank 1 gets nothing from the short last batch.
  EXPECT_EQ(shard_range(21, 4, 1, 2, false, true, false).size(), 5u);
  EXPECT_EQ(shard_range(21, 4, 0, 2, false, true, false).back(), (Indices{20}));
  EXPECT_THROW(shard_range(24, 3, 0, 2, false, true), accel::Error);
}

TEST(BatchSamplerShard, EveryIndexCoveredAndCountsEqual) {
  for (int world : {2, 3, 4}) {
    for (int64_t n : {1, 7, 50, 101}) {
      std::set<int64_t> seen;
      size_t count = 0;
      for (int r = 0; r < world; ++r) {
        auto b = shard_range(n, 4, r, world);
        if (r == 0) count = b.size();
        EXPECT_EQ(b.size(), count) << "world " << world << " n " << n;
        for (auto& batch : b) {
          EXPECT_EQ(batch.size(), 4u);
          seen.insert(batch.begin(), batch.end());
        }
      }
      EXPECT_EQ(static_cast<int64_t>(seen.size()), n);
    }
  }
}

TEST(Remainder, MatchesAccelerate) {
  ShardSpec s;
  s.world_size = 2;
  EXPECT_EQ(shard_remainder(2001, 16, s), 2001 % 32);
  s.world_size = 3;
  EXPECT_EQ(shard_remainder(2001, 16, s), 2001 % 48);
  s.split_batches = true;
  EXPECT_EQ(shard_remainder(2001, 16, s), 2001 % 16);
  s.drop_last = true;
  EXPECT_EQ(shard_remainder(2001, 16, s), 0);
}

TEST(Samplers, SeedableShuffleIsAPermutationReseededPerEpoch) {
  SeedableRandomSampler s(100, 42);
  Indices e0 = s.indices(0), e0b = SeedableRandomSampler(100, 42).indices(0), e1 = s.indices(1);
  EXPECT_EQ(e0, e0b);  // every rank computes the same order
  EXPECT_NE(e0, e1);
  Indices sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  Indices expect(100);
  std::iota(expect.begin(), expect.end(), 0);
  EXPECT_EQ(sorted, expect);
  // seed + epoch: epoch 1 of seed 42 is epoch 0 of seed 43 (Accelerate's SeedableRandomSampler).
  EXPECT_EQ(e1, SeedableRandomSampler(100, 43).indices(0));
}

TEST(Samplers, LengthGroupedKeepsSimilarLengthsTogether) {
  std::vector<int64_t> lengths(400);
  for (size_t i = 0; i < lengths.size(); ++i) lengths[i] = static_cast<int64_t>((i * 37) % 300 + 1);
  LengthGroupedSampler s(lengths, 8, 7, 10);
  Indices idx = s.indices(0);
  Indices sorted = idx;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) ASSERT_EQ(sorted[i], static_cast<int64_t>(i));
  EXPECT_EQ(lengths[idx[0]], 300);  // the longest first
  // Padding waste per batch is far below a random order's.
  auto waste = [&](const Indices& order) {
    int64_t w = 0;
    for (size_t b = 0; b + 8 <= order.size(); b += 8) {
      int64_t mx = 0, sum = 0;
      for (size_t k = b; k < b + 8; ++k) {
        mx = std::max(mx, lengths[order[k]]);
        sum += lengths[order[k]];
      }
      w += mx * 8 - sum;
    }
    return w;
  };
  EXPECT_LT(waste(idx) * 4, waste(SeedableRandomSampler(400, 7).indices(0)));
  EXPECT_EQ(idx, LengthGroupedSampler(lengths, 8, 7, 10).indices(0));
}

namespace {

std::shared_ptr<DataLoader<Indices>> index_loader(int64_t n, DataLoaderOptions o) {
  return make_loader<Indices>(
      n, [](const Indices& idx) { return idx; }, o);
}

}  // namespace

TEST(DataLoader, YieldsAllBatchesAndFlagsTheLastOneWhileItIsProcessed) {
  auto loader = index_loader(10, DataLoaderOptions(3));
  EXPECT_EQ(loader->size(), 4);
  std::vector<bool> last_flags;
  Batches got;
  for (auto& b : *loader) {
    got.push_back(b);
    last_flags.push_back(loader->end_of_dataloader());
    EXPECT_TRUE(loader->in_iteration());
  }
  EXPECT_EQ(got, (Batches{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9}}));
  EXPECT_EQ(last_flags, (std::vector<bool>{false, false, false, true}));
  EXPECT_FALSE(loader->in_iteration());
  EXPECT_EQ(loader->epoch(), 1);
}

TEST(DataLoader, ShuffleChangesPerEpochAndPrefetchThreadsKeepOrder) {
  auto inline_loader = index_loader(50, DataLoaderOptions(4).shuffle(true).seed(3));
  auto threaded = index_loader(50, DataLoaderOptions(4).shuffle(true).seed(3).num_workers(2));
  for (int epoch = 0; epoch < 2; ++epoch) {
    Batches a, b;
    for (auto& x : *inline_loader) a.push_back(x);
    for (auto& x : *threaded) b.push_back(x);
    EXPECT_EQ(a, b);
    EXPECT_EQ(a.front(), make_batches(SeedableRandomSampler(50, 3).indices(epoch), 4, false).front());
  }
}

TEST(DataLoader, CollateErrorsReachTheLoop) {
  auto loader = make_loader<int>(
      10,
      [](const Indices& idx) -> int {
        if (idx[0] == 4) throw std::runtime_error("bad sample 4");
        return static_cast<int>(idx[0]);
      },
      DataLoaderOptions(2).num_workers(2));
  EXPECT_THROW(
      {
        for (auto& x : *loader) (void)x;
      },
      std::runtime_error);
  EXPECT_FALSE(loader->in_iteration());
}

TEST(DataLoader, ResumesMidEpochFromItsState) {
  auto a = index_loader(20, DataLoaderOptions(2).shuffle(true).seed(9));
  Batches straight;
  for (auto& b : *a) straight.push_back(b);
  auto b = index_loader(20, DataLoaderOptions(2).shuffle(true).seed(9));
  Batches first;
  DataLoaderBase::State saved;
  for (auto& x : *b) {
    first.push_back(x);
    if (first.size() == 4) {
      saved = b->state();
      break;
    }
  }
  EXPECT_EQ(saved.position, 4);
  EXPECT_EQ(saved.epoch, 0);
  auto c = index_loader(20, DataLoaderOptions(2).shuffle(true).seed(9));
  c->load_state(saved);
  Batches rest;
  for (auto& x : *c) rest.push_back(x);
  first.insert(first.end(), rest.begin(), rest.end());
  EXPECT_EQ(first, straight);
  EXPECT_EQ(c->epoch(), 1);
}

TEST(DataLoader, RestoredPositionSurvivesASaveBeforeTheLoop) {
  // load_state then state() again (a checkpoint taken before iterating) keeps the position,
  // and so does a pending skip_first_batches.
  auto a = index_loader(20, DataLoaderOptions(2));
  DataLoaderBase::State s = a->state();  // epoch 0, 1 process, batch 2
  s.position = 3;
  a->load_state(s);
  EXPECT_EQ(a->position(), 3);
  EXPECT_EQ(a->state().position, 3);
  auto b = index_loader(20, DataLoaderOptions(2));
  b->load_state(a->state());
  Batches got;
  for (auto& x : *b) got.push_back(x);
  ASSERT_EQ(got.size(), 7u);
  EXPECT_EQ(got.front(), (std::vector<int64_t>{6, 7}));
  auto c = index_loader(10, DataLoaderOptions(2));
  c->skip_first_batches(2);
  EXPECT_EQ(c->state().position, 2);
}

TEST(DataLoader, PositionCannotMoveToAnotherWorldSize) {
  auto a = index_loader(20, DataLoaderOptions(2));
  DataLoaderBase::State s;
  s.epoch = 1;
  s.position = 3;
  s.world_size = 2;
  s.batch_size = 2;
  try {
    a->load_state(s);
    FAIL();
  } catch (const accel::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("cannot be transferred"), std::string::npos);
  }
}

TEST(DataLoader, SkipFirstBatches) {
  auto a = index_loader(10, DataLoaderOptions(2));
  a->skip_first_batches(3);
  Batches got;
  for (auto& b : *a) got.push_back(b);
  EXPECT_EQ(got, (Batches{{6, 7}, {8, 9}}));
  Batches again;
  for (auto& b : *a) again.push_back(b);
  EXPECT_EQ(again.size(), 5u);  // only the first iteration skips
}

TEST(DataLoader, TensorLoaderGathersRows) {
  at::Tensor x = at::arange(10).reshape({5, 2});
  at::Tensor y = at::arange(5);
  auto loader = make_tensor_loader({x, y}, DataLoaderOptions(2));
  std::vector<int64_t> ys;
  for (auto& batch : *loader) {
    ASSERT_EQ(batch.size(), 2u);
    EXPECT_EQ(batch[0].size(1), 2);
    for (int64_t i = 0; i < batch[1].size(0); ++i) ys.push_back(batch[1][i].item<int64_t>());
  }
  EXPECT_EQ(ys, (std::vector<int64_t>{0, 1, 2, 3, 4}));
}
