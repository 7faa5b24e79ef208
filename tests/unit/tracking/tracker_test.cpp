// JSONL and CSV round trips, the Trackers collection (main-process-only, call order, names)
// and the factory.
#include "accel/tracking/tracker.h"

#include "accel/core/error.h"
#include "unit/tracking/test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

namespace accel::tracking {
namespace {

namespace fs = accel::fs;
using test::read_file;
using test::TempDir;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

TEST(Value, ConversionsAndText) {
  Value d = 0.1, f = 0.5f, i = 3, u = std::size_t{7}, b = true, s = "train";
  EXPECT_TRUE(d.is_double());
  EXPECT_TRUE(f.is_double());
  EXPECT_TRUE(i.is_int());
  EXPECT_EQ(u.as_int(), 7);
  EXPECT_EQ(b.as_int(), 1);
  EXPECT_EQ(s.as_string(), "train");
  EXPECT_EQ(d.to_string(), "0.1");
  EXPECT_EQ(Value(1e-4).to_string(), "1e-04");  // std::to_chars, shortest exact form
  EXPECT_EQ(Value(std::nan("")).to_string(), "nan");
  EXPECT_EQ(Value(-1.0 / 0.0).to_string(), "-inf");
  EXPECT_EQ(i.to_double(), 3.0);
  EXPECT_THROW(s.to_double(), accel::Error);
  EXPECT_THROW(d.as_string(), accel::Error);
}

TEST(JsonlTracker, RoundTrip) {
  TempDir tmp;
  JsonlTracker t(tmp.str());
  t.start("run1", {{"lr", 5e-5}, {"batch_size", 32}, {"model", "bert"}});
  t.log({{"loss", 0.6931471805599453}, {"epoch", 0}, {"phase", "train \"a\"\n"}}, 1);
  t.log({{"loss", 2.0}, {"acc", 0.75}}, 2);
  t.finish();

  auto cfg = nlohmann::json::parse(read_file(tmp.path() / "run1" / "config.json"));
  EXPECT_EQ(cfg["lr"].get<double>(), 5e-5);
  EXPECT_EQ(cfg["batch_size"].get<std::int64_t>(), 32);
  EXPECT_EQ(cfg["model"].get<std::string>(), "bert");

  auto lines = lines_of(read_file(tmp.path() / "run1" / "metrics.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  auto a = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(a["step"].get<std::int64_t>(), 1);
  EXPECT_GT(a["wall_time"].get<double>(), 1.5e9);
  EXPECT_EQ(a["loss"].get<double>(), 0.6931471805599453);  // exact round trip
  EXPECT_TRUE(a["epoch"].is_number_integer());
  EXPECT_EQ(a["phase"].get<std::string>(), "train \"a\"\n");
  auto b = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(b["step"].get<std::int64_t>(), 2);
  EXPECT_TRUE(b["loss"].is_number_float());  // 2.0 stays a double
  EXPECT_EQ(b["acc"].get<double>(), 0.75);
  EXPECT_EQ(b.size(), 4u);
  // Line layout: step and wall_time first, then keys sorted.
  EXPECT_EQ(lines[1].rfind("{\"step\":2,\"wall_time\":", 0), 0u) << lines[1];
  EXPECT_NE(lines[1].find(",\"acc\":0.75,\"loss\":2.0}"), std::string::npos) << lines[1];
}

TEST(JsonlTracker, NonFiniteAsPythonJson) {
  TempDir tmp;
  JsonlTracker t(tmp.str());
  t.start("r", {});
  t.log({{"a", std::nan("")}, {"b", 1.0 / 0.0}, {"c", -1.0 / 0.0}}, 3);
  auto text = read_file(tmp.path() / "r" / "metrics.jsonl");  // flushed: read before finish()
  EXPECT_NE(text.find(",\"a\":NaN,\"b\":Infinity,\"c\":-Infinity}\n"), std::string::npos) << text;
  t.finish();
}

TEST(JsonlTracker, AppendsOnResume) {
  TempDir tmp;
  {
    JsonlTracker t(tmp.str());
    t.start("r", {});
    t.log({{"x", 1}}, 1);
    t.finish();
  }
  JsonlTracker t(tmp.str());
  t.start("r", {});
  t.log({{"x", 2}}, 2);
  t.finish();
  EXPECT_EQ(lines_of(read_file(tmp.path() / "r" / "metrics.jsonl")).size(), 2u);
}

TEST(CsvTracker, RoundTrip) {
  TempDir tmp;
  CsvTracker t(tmp.str());
  t.start("run", {{"lr", 0.001}});
  t.log({{"loss", 0.5}, {"epoch", 1}}, 10);
  t.log({{"loss", 0.1}, {"epoch", 2}}, 20);
  // Readable mid-run.
  auto mid = lines_of(read_file(tmp.path() / "run" / "metrics.csv"));
  EXPECT_EQ(mid.size(), 3u);
  t.finish();
  auto lines = lines_of(read_file(tmp.path() / "run" / "metrics.csv"));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "step,wall_time,epoch,loss");
  auto r1 = split_commas(lines[1]);
  ASSERT_EQ(r1.size(), 4u);
  EXPECT_EQ(r1[0], "10");
  EXPECT_GT(std::stod(r1[1]), 1.5e9);
  EXPECT_EQ(r1[2], "1");
  EXPECT_EQ(std::stod(r1[3]), 0.5);
  auto r2 = split_commas(lines[2]);
  EXPECT_EQ(r2[0], "20");
  EXPECT_EQ(std::stod(r2[3]), 0.1);  // shortest exact form reads back exactly
  EXPECT_TRUE(fs::exists(tmp.path() / "run" / "config.json"));
}

TEST(CsvTracker, NewKeysAddColumnsAndMissingKeysLeaveEmptyCells) {
  TempDir tmp;
  CsvTracker t(tmp.str());
  t.start("run", {});
  t.log({{"loss", 0.5}}, 1);
  t.log({{"loss", 0.4}}, 2);
  t.log({{"loss", 0.3}, {"eval_acc", 0.9}, {"note", "a,b \"c\""}}, 3);  // two new keys
  t.log({{"eval_acc", 0.95}}, 4);                                     // loss missing
  EXPECT_EQ(t.columns(), (std::vector<std::string>{"step", "wall_time", "loss", "eval_acc",
                                                   "note"}));
  t.finish();
  auto lines = lines_of(read_file(tmp.path() / "run" / "metrics.csv"));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], "step,wall_time,loss,eval_acc,note");
  auto tail = [](const std::string& l) { return l.substr(l.find(',', l.find(',') + 1)); };
  EXPECT_EQ(tail(lines[1]), ",0.5,,");
  EXPECT_EQ(tail(lines[2]), ",0.4,,");
  EXPECT_EQ(tail(lines[3]), ",0.3,0.9,\"a,b \"\"c\"\"\"");
  EXPECT_EQ(tail(lines[4]), ",,0.95,");
  EXPECT_EQ(lines[4].rfind("4,", 0), 0u);
  EXPECT_FALSE(fs::exists(tmp.path() / "run" / "metrics.csv.tmp"));
}

TEST(CsvTracker, ResumeKeepsColumns) {
  TempDir tmp;
  {
    CsvTracker t(tmp.str());
    t.start("run", {});
    t.log({{"b", 1}, {"a", 2}}, 1);
    t.finish();
  }
  CsvTracker t(tmp.str());
  t.start("run", {});
  EXPECT_EQ(t.columns(), (std::vector<std::string>{"step", "wall_time", "a", "b"}));
  t.log({{"a", 3}, {"b", 4}}, 2);
  t.finish();
  auto lines = lines_of(read_file(tmp.path() / "run" / "metrics.csv"));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "step,wall_time,a,b");
  EXPECT_EQ(lines[2].substr(lines[2].size() - 4), ",3,4");
}

TEST(Trackers, FactoryNames) {
  TempDir tmp;
  auto all = make_trackers({"all", "csv"}, tmp.str());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]->name(), "jsonl");
  EXPECT_EQ(all[1]->name(), "csv");
  EXPECT_EQ(all[2]->name(), "tensorboard");
  EXPECT_EQ(make_tracker("tensorboard", tmp.str())->name(), "tensorboard");
  try {
    make_trackers({"jsonl", "wandb"}, tmp.str());
    FAIL() << "expected accel::Error";
  } catch (const accel::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("\"wandb\""), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"jsonl\", \"csv\", \"tensorboard\", \"all\""), std::string::npos) << msg;
  }
  EXPECT_THROW(make_tracker("all", tmp.str()), accel::Error);
  EXPECT_THROW(Trackers(true, {"tensorbord"}, tmp.str()), accel::Error);
  // Constructing trackers creates nothing.
  EXPECT_TRUE(fs::list_dir(tmp.path()).empty());
}

TEST(Trackers, MainProcessWritesAll) {
  TempDir tmp;
  Trackers t(/*is_main_process=*/true, {"all"}, tmp.str());
  EXPECT_EQ(t.size(), 3u);
  t.init("exp", {{"lr", 1e-3}});
  t.log({{"loss", 1.5}}, 1);
  t.end();
  t.end();  // idempotent
  std::vector<std::string> names;
  for (const auto& e : fs::list_dir(tmp.path() / "exp")) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  ASSERT_EQ(names.size(), 4u);
  EXPECT_EQ(names[0], "config.json");
  EXPECT_EQ(names[1].rfind("events.out.tfevents.", 0), 0u);
  EXPECT_EQ(names[2], "metrics.csv");
  EXPECT_EQ(names[3], "metrics.jsonl");
  ASSERT_NE(t.get("csv"), nullptr);
  EXPECT_EQ(t.get("csv")->name(), "csv");
  EXPECT_EQ(t.get("wandb"), nullptr);
}

TEST(Trackers, NonMainRankWritesNothing) {
  TempDir tmp;
  auto dir = tmp.path() / "logs";  // does not exist
  for (int rank = 1; rank < 4; ++rank) {
    Trackers t(/*is_main_process=*/false, {"all"}, dir.string());
    t.init("exp", {{"lr", 1e-3}});
    for (int step = 0; step < 5; ++step) t.log({{"loss", 1.0 / (step + 1)}}, step);
    t.end();
  }
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::list_dir(tmp.path()).empty());
}

// A user tracker recording its calls; optionally one that runs on every rank.
class RecordingTracker : public GeneralTracker {
 public:
  RecordingTracker(std::vector<std::string>* calls, bool main_only)
      : calls_(calls), main_only_(main_only) {}
  std::string name() const override { return main_only_ ? "rec" : "rec_all_ranks"; }
  void start(const std::string& project, const Values& config) override {
    calls_->push_back("start " + project + " " + std::to_string(config.size()));
  }
  void log(const Values& values, std::int64_t step) override {
    calls_->push_back("log " + std::to_string(step) + " " + values.begin()->second.to_string());
  }
  void finish() override { calls_->push_back("finish"); }
  bool main_process_only() const override { return main_only_; }

 private:
  std::vector<std::string>* calls_;
  bool main_only_;
};

TEST(Trackers, UserTrackersAndMainProcessOnlyFlag) {
  for (bool main : {true, false}) {
    std::vector<std::string> main_only_calls, all_ranks_calls;
    {
      Trackers t(main);
      t.add(std::make_unique<RecordingTracker>(&main_only_calls, true));
      t.add(std::make_unique<RecordingTracker>(&all_ranks_calls, false));
      EXPECT_THROW(t.add(std::make_unique<RecordingTracker>(&main_only_calls, true)),
                   accel::Error);  // duplicate name
      t.init("p", {{"a", 1}});
      t.log({{"loss", 0.5}}, 7);
    }  // destructor ends the run
    std::vector<std::string> expect = {"start p 1", "log 7 0.5", "finish"};
    EXPECT_EQ(all_ranks_calls, expect);
    EXPECT_EQ(main_only_calls, main ? expect : std::vector<std::string>{});
  }
}

TEST(Trackers, MisuseFailsOnEveryRank) {
  TempDir tmp;
  for (bool main : {true, false}) {
    Trackers t(main, {"jsonl"}, tmp.str());
    EXPECT_THROW(t.log({{"loss", 1.0}}, 0), accel::Error);  // before init
    EXPECT_THROW(t.init("", {}), accel::Error);
    EXPECT_THROW(t.init("../escape", {}), accel::Error);
    EXPECT_THROW(t.init("/abs", {}), accel::Error);
    t.init("ok", {});
    EXPECT_THROW(t.init("ok", {}), accel::Error);  // twice
    EXPECT_THROW(t.log({{"step", 1}}, 0), accel::Error);
    EXPECT_THROW(t.log({{"wall_time", 1}}, 0), accel::Error);
    EXPECT_THROW(t.log({{"", 1}}, 0), accel::Error);
    EXPECT_THROW(t.add(make_tracker("csv", tmp.str())), accel::Error);  // after init
    t.end();
    EXPECT_THROW(t.log({{"loss", 1.0}}, 1), accel::Error);  // after end
  }
}

}  // namespace
}  // namespace accel::tracking
