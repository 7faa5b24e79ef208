// The precision benchmark's PNG chart, drawn by gnuplot: samples/s and peak memory per precision.
#include "accel/bench/precision.h"
#include "accel/core/fs.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace accel::bench {
namespace {

// Single-quoted for the shell.
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Double-quoted for gnuplot.
std::string gp_quote(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

double to_mib(std::optional<int64_t> b) {
  return b ? static_cast<double>(*b) / (1024.0 * 1024.0) : 0.0;
}

}  // namespace

std::string write_chart_png(const PrecisionReport& report, const std::string& png) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0)
    return "gnuplot is not installed (apt-get install gnuplot-nox); the PNG was skipped";
  bool any = false;
  for (const auto& r : report.results) any = any || r.ran;
  if (!any) return "no precision ran; nothing to draw";

  const bool cuda = report.device.rfind("cuda", 0) == 0;
  const std::string mem1 = cuda ? "peak allocated (CUDA)" : "peak RSS";
  const std::string mem2 = cuda ? "peak reserved (CUDA)" : "peak tensor bytes";
  const fs::TempDir dir("accel-chart-");  // removed on return
  const std::string dat = dir / "data.dat";
  const std::string gp = dir / "chart.gp";
  {
    std::ofstream d(dat);
    d << "# precision samples/s mem1_MiB mem2_MiB\n";
    for (const auto& r : report.results) {
      if (!r.ran) continue;
      const std::string name = r.precision == "no" ? "fp32" : r.precision;
      d << name << " " << r.samples_per_s << " "
        << to_mib(cuda ? r.cuda_peak_allocated_bytes : r.peak_rss_bytes) << " "
        << to_mib(cuda ? r.cuda_peak_reserved_bytes : r.peak_tensor_bytes) << "\n";
    }
  }
  int rows = 0;
  for (const auto& r : report.results) rows += r.ran ? 1 : 0;
  const bool cairo = std::system("gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1") == 0;
  char title[512];
  std::snprintf(title, sizeof title, "%s, batch %lld x seq %lld, %s, %d threads", report.model.c_str(),
                static_cast<long long>(report.batch_size), static_cast<long long>(report.seq_len),
                report.device.c_str(), report.num_threads);
  {
    std::ofstream g(gp);
    g << (cairo ? "set terminal pngcairo size 1100,480 font 'Sans,10'\n"
                : "set terminal png size 1100,480\n");
    g << "set output " << gp_quote(png) << "\n";
    g << "set datafile separator whitespace\n";
    g << "set multiplot layout 1,2 title " << gp_quote(title) << "\n";
    g << "set style data histograms\nset style fill solid 0.85 border -1\nset boxwidth 0.8\n";
    g << "set grid ytics\nset yrange [0:*]\nset offsets 0,0,graph 0.12,0\nset key top left\n";
    g << "set xrange [-0.6:" << rows - 0.4 << "]\n";
    // Left: throughput.
    g << "set title 'throughput (higher is better)'\nset ylabel 'samples/s'\n";
    g << "set style histogram clustered gap 1\n";
    g << "plot " << gp_quote(dat)
      << " using 2:xtic(1) title 'samples/s' lc rgb '#4472c4', '' using 0:2:(sprintf('%.2f',$2)) "
         "with labels offset 0,0.8 notitle\n";
    // Right: memory.
    g << "set title 'peak memory (lower is better)'\nset ylabel 'MiB'\n";
    g << "plot " << gp_quote(dat) << " using 3:xtic(1) title " << gp_quote(mem1)
      << " lc rgb '#ed7d31', '' using 4 title " << gp_quote(mem2) << " lc rgb '#a5a5a5', "
      << "'' using ($0-0.17):3:(sprintf('%.0f',$3)) with labels offset 0,0.8 notitle, "
      << "'' using ($0+0.17):4:(sprintf('%.0f',$4)) with labels offset 0,0.8 notitle\n";
    g << "unset multiplot\n";
  }
  const int rc = std::system(("gnuplot " + shell_quote(gp) + " 2>" + shell_quote(dir / "err.txt")).c_str());
  std::string err;
  if (rc != 0) {
    std::ifstream e(dir / "err.txt");
    std::getline(e, err);
  }
  if (rc != 0) return "gnuplot failed: " + err;
  if (!fs::exists(png)) return "gnuplot wrote no file";
  return "";
}

}  // namespace accel::bench
