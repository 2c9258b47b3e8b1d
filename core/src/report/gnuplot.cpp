#include "src/report/gnuplot.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "lorafed/error.hpp"
#include "src/sdk/atomic_file.hpp"

extern char** environ;

namespace lorafed {
namespace {

namespace fs = std::filesystem;

// A gnuplot single-quoted string: quotes doubled.
std::string quoted(const std::string& text) {
  std::string result = "'";
  for (const char c : text) result += c == '\'' ? std::string("''") : std::string(1, c);
  return result + "'";
}

}  // namespace

Figure::Figure(std::string stem, std::string title, std::string x_label, std::string y_label)
    : stem_(std::move(stem)),
      title_(std::move(title)),
      x_label_(std::move(x_label)),
      y_label_(std::move(y_label)) {}

void Figure::add(const std::string& series, double x, double y) {
  if (std::find(series_.begin(), series_.end(), series) == series_.end()) series_.push_back(series);
  values_[x][series].push_back(y);
}

std::map<double, std::vector<std::optional<double>>> Figure::table() const {
  std::map<double, std::vector<std::optional<double>>> rows;
  for (const auto& [x, by_series] : values_) {
    std::vector<std::optional<double>>& row = rows[x];
    for (const std::string& name : series_) {
      const auto found = by_series.find(name);
      if (found == by_series.end() || found->second.empty()) {
        row.emplace_back();
        continue;
      }
      double sum = 0;
      for (const double value : found->second) sum += value;
      row.emplace_back(sum / static_cast<double>(found->second.size()));
    }
  }
  return rows;
}

void Figure::write_data(const fs::path& directory) const {
  write_file_atomically(directory / (stem_ + ".dat"), [this](std::ostream& out) {
    out << "# " << x_label_;
    for (const std::string& name : series_) out << "\t" << name;
    out << "\n";
    out.precision(10);
    for (const auto& [x, row] : table()) {
      out << x;
      for (const auto& value : row) {
        out << "\t";
        if (value) {
          out << *value;
        } else {
          out << "NaN";
        }
      }
      out << "\n";
    }
  });
}

std::string Figure::script() const {
  std::ostringstream out;
  out << "set output " << quoted(stem_ + ".png") << "\n"
      << "set title " << quoted(title_) << " noenhanced\n"
      << "set xlabel " << quoted(x_label_) << " noenhanced\n"
      << "set ylabel " << quoted(y_label_) << " noenhanced\n"
      << (log_x ? "set logscale x 2\n" : "unset logscale x\n")
      << (log_y ? "set logscale y\n" : "unset logscale y\n") << "plot ";
  for (std::size_t i = 0; i < series_.size(); ++i) {
    out << (i > 0 ? ", \\\n     " : "") << quoted(stem_ + ".dat") << " using 1:" << i + 2
        << (points ? " with points pt 7 ps 0.6" : " with linespoints pt 7 ps 0.5") << " title "
        << quoted(series_[i]) << " noenhanced";
  }
  out << "\n\n";
  return out.str();
}

void draw_figures(const fs::path& directory, const std::vector<Figure>& figures) {
  std::ostringstream script;
  script << "# Written by `lorafed report`: gnuplot report.gp redraws the figures from the .dat "
            "files.\n"
         << "set terminal pngcairo size 960,560 font ',10'\n"
         << "set datafile missing 'NaN'\n"
         << "set grid\n"
         << "set key outside right top\n\n";
  for (const Figure& figure : figures) {
    figure.write_data(directory);
    script << figure.script();
  }
  write_file_atomically(directory / "report.gp",
                        [&script](std::ostream& out) { out << script.str(); });

  // gnuplot runs in the report folder, without a shell. The file actions run
  // in order, so the log's path must not depend on the change of folder.
  const fs::path folder = fs::absolute(directory);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, folder.c_str());
  const std::string log = (folder / "gnuplot.log").string();
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::string program = "gnuplot", argument = "report.gp";
  char* argv[] = {program.data(), argument.data(), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    throw Error(std::string("cannot run gnuplot (") + std::strerror(spawned) +
                "): install Debian's gnuplot-nox (scripts/setup.sh does)");
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream in(log);
    std::ostringstream text;
    text << in.rdbuf();
    throw Error("gnuplot failed on " + (directory / "report.gp").string() + ":\n" + text.str());
  }
}

}  // namespace lorafed
