// TensorBoard event files written by accel, read back by TensorBoard's own EventAccumulator
// (tools/reference/read_tensorboard.py in the reference venv) with the same tags, steps and
// float32 values.
#include "accel/tracking/tracker.h"

#include "unit/tracking/test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string>

namespace accel::tracking {
namespace {

namespace fs = accel::fs;

const std::string kRefPython = ACCEL_SOURCE_DIR "/.venv-ref/bin/python";
const std::string kReader = ACCEL_SOURCE_DIR "/tools/reference/read_tensorboard.py";

// Runs the reference reader on `run_dir`; fails the test (never skips) without the venv.
nlohmann::json read_with_tensorboard(const test::TempDir& tmp, const std::string& run_dir) {
  if (!fs::exists(kRefPython)) {
    ADD_FAILURE() << "The reference Python venv is missing (" << kRefPython
                  << "). Run scripts/setup-reference.sh to create it; this test checks accel's "
                     "event files with TensorBoard's own reader.";
    return nullptr;
  }
  auto out = tmp.path() / "tb.json";
  auto err = tmp.path() / "tb.err";
  std::string cmd = "'" + kRefPython + "' '" + kReader + "' '" + run_dir + "' --out '" + out.string() +
                    "' 2> '" + err.string() + "'";
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    ADD_FAILURE() << "read_tensorboard.py failed (status " << rc << "):\n" << cmd << "\n"
                  << test::read_file(err);
    return nullptr;
  }
  return nlohmann::json::parse(test::read_file(out));
}

TEST(TensorBoardReference, TensorBoardReadsOurEvents) {
  test::TempDir tmp;
  {
    Trackers t(/*is_main_process=*/true, {"tensorboard"}, tmp.str());
    t.init("bert-imdb", {{"lr", 5e-5}, {"batch_size", 8}, {"model", "bert-base"}});
    for (int step = 1; step <= 20; ++step) {
      Values v{{"train/loss", 1.0 / step + 0.1234567891}, {"lr", 5e-5 * (20 - step) / 20.0}};
      if (step % 5 == 0) v.emplace("eval/accuracy", 0.5 + step / 100.0);
      if (step == 10) v.emplace("note", "halfway: loss < 0.3");
      v.emplace("epoch", std::int64_t{step / 10});
      t.log(v, step * 100);
    }
    // end() by the destructor
  }
  auto run_dir = tmp.path() / "bert-imdb";
  auto tb = read_with_tensorboard(tmp, run_dir);
  ASSERT_FALSE(tb.is_null());

  EXPECT_EQ(tb["file_version"], "brain.Event:2");
  EXPECT_EQ(tb["num_files"], 1);
  auto& scalars = tb["scalars"];
  ASSERT_EQ(scalars.size(), 4u) << tb.dump(1);
  for (const char* tag : {"train/loss", "lr", "epoch"}) {
    ASSERT_TRUE(scalars.contains(tag)) << tag;
    ASSERT_EQ(scalars[tag].size(), 20u) << tag;
  }
  for (int step = 1; step <= 20; ++step) {
    const auto& loss = scalars["train/loss"][step - 1];
    EXPECT_EQ(loss[0].get<std::int64_t>(), step * 100);
    // TensorBoard stores float32: compare with the float32 of what was logged, exactly.
    EXPECT_EQ(loss[1].get<double>(), static_cast<double>(static_cast<float>(1.0 / step + 0.1234567891)));
    EXPECT_EQ(scalars["lr"][step - 1][1].get<double>(),
              static_cast<double>(static_cast<float>(5e-5 * (20 - step) / 20.0)));
    EXPECT_EQ(scalars["epoch"][step - 1][1].get<double>(), static_cast<double>(step / 10));
  }
  ASSERT_EQ(scalars["eval/accuracy"].size(), 4u);
  for (int i = 0; i < 4; ++i) {
    int step = 5 * (i + 1);
    EXPECT_EQ(scalars["eval/accuracy"][i][0].get<std::int64_t>(), step * 100);
    EXPECT_EQ(scalars["eval/accuracy"][i][1].get<double>(),
              static_cast<double>(static_cast<float>(0.5 + step / 100.0)));
  }

  auto& texts = tb["texts"];
  ASSERT_TRUE(texts.contains("config")) << tb.dump(1);
  ASSERT_EQ(texts["config"].size(), 1u);
  EXPECT_EQ(texts["config"][0][0], 0);
  EXPECT_EQ(texts["config"][0][1],
            "| name | value |\n| --- | --- |\n| batch_size | 8 |\n| lr | 5e-05 |\n"
            "| model | bert-base |\n");
  EXPECT_EQ(tb["text_plugin"]["config"], "text");
  ASSERT_TRUE(texts.contains("note"));
  ASSERT_EQ(texts["note"].size(), 1u);
  EXPECT_EQ(texts["note"][0][0], 1000);
  EXPECT_EQ(texts["note"][0][1], "halfway: loss < 0.3");
  EXPECT_EQ(tb["text_plugin"]["note"], "text");
}

TEST(TensorBoardReference, ReadableWhileRunning) {
  // A reader started mid-run sees everything logged so far (flush after each log).
  test::TempDir tmp;
  Trackers t(/*is_main_process=*/true, {"tensorboard"}, tmp.str());
  t.init("live", {});
  t.log({{"loss", 0.75}}, 1);
  t.log({{"loss", 0.5}}, 2);
  auto tb = read_with_tensorboard(tmp, tmp.path() / "live");
  ASSERT_FALSE(tb.is_null());
  ASSERT_EQ(tb["scalars"]["loss"].size(), 2u) << tb.dump(1);
  EXPECT_EQ(tb["scalars"]["loss"][1][0], 2);
  EXPECT_EQ(tb["scalars"]["loss"][1][1].get<double>(), 0.5);
  t.end();
}

}  // namespace
}  // namespace accel::tracking
