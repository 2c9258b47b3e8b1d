#include "src/report/gnuplot.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "lorafed/error.hpp"
#include "src/sdk/atomic_file.hpp"

extern char** environ;

namespace lorafed {
namespace {

namespace fs = std::filesystem;

// A gnuplot single-quoted string: quotes doubled.
std::string gnuplot_string(const std::string& text) {
  std::string result = "'";
  for (const char c : text) result += c == '\'' ? std::string("''") : std::string(1, c);
  return result + "'";
}

// Twelve colours told apart on white, by people with the common colour
// vision deficiencies too as far as twelve allow: Okabe and Ito's eight
// (their yellow darkened) and four of Paul Tol's.
constexpr std::array<const char*, kPaletteSize> kPalette = {
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
    "#000000", "#882255", "#999933", "#332288", "#44AA99", "#B8A200"};

// pngcairo point types: filled circle, square, triangle, diamond, inverted
// triangle, pentagon, the same open, then +, x, *. Fifteen and twelve are
// coprime up to 3, so (colour, marker) repeats only after 60 series.
constexpr std::array<int, 15> kMarkers = {7, 5, 9, 13, 11, 15, 6, 4, 8, 12, 10, 14, 1, 2, 3};

// Caption lines longer than this many characters are wrapped (at 9 points
// on a 1000-pixel-wide figure).
constexpr std::size_t kCaptionWidth = 150;

// `text` cut at spaces into lines of at most `width` characters (a longer
// word stays whole).
std::vector<std::string> wrapped(const std::string& text, std::size_t width) {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

// The step between integer x ticks: 1, 2, 5, 10, 20, 50, ... so that at most
// about ten ticks cover `span`.
double integer_tick_step(double span) {
  for (double scale = 1;; scale *= 10) {
    for (const double step : {1.0, 2.0, 5.0}) {
      if (span / (step * scale) <= 10) return step * scale;
    }
  }
}

}  // namespace

bool natural_less(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool digit_a = std::isdigit(static_cast<unsigned char>(a[i])) != 0;
    const bool digit_b = std::isdigit(static_cast<unsigned char>(b[j])) != 0;
    if (digit_a && digit_b) {
      std::size_t end_a = i, end_b = j;
      while (end_a < a.size() && std::isdigit(static_cast<unsigned char>(a[end_a])) != 0) ++end_a;
      while (end_b < b.size() && std::isdigit(static_cast<unsigned char>(b[end_b])) != 0) ++end_b;
      const std::string number_a = a.substr(i, end_a - i), number_b = b.substr(j, end_b - j);
      if (number_a.size() != number_b.size()) return number_a.size() < number_b.size();
      if (number_a != number_b) return number_a < number_b;
      i = end_a;
      j = end_b;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j];
    ++i;
    ++j;
  }
  return a.size() - i < b.size() - j;
}

SeriesStyle series_style(std::size_t index) {
  return {kPalette[index % kPalette.size()], kMarkers[index % kMarkers.size()]};
}

Figure::Figure(std::string stem, std::string title, std::string x_label, std::string y_label,
               std::string spread_of)
    : stem_(std::move(stem)),
      title_(std::move(title)),
      x_label_(std::move(x_label)),
      y_label_(std::move(y_label)),
      spread_of_(std::move(spread_of)) {}

void Figure::add(const std::string& series, double x, double y) {
  if (std::find(series_.begin(), series_.end(), series) == series_.end()) series_.push_back(series);
  values_[x][series].push_back(y);
}

void Figure::sort_series() {
  std::stable_sort(series_.begin(), series_.end(), natural_less);
}

std::map<double, std::vector<std::optional<Band>>> Figure::table() const {
  std::map<double, std::vector<std::optional<Band>>> rows;
  for (const auto& [x, by_series] : values_) {
    std::vector<std::optional<Band>>& row = rows[x];
    for (const std::string& name : series_) {
      const auto found = by_series.find(name);
      if (found == by_series.end() || found->second.empty()) {
        row.emplace_back();
        continue;
      }
      const std::vector<double>& values = found->second;
      Band band;
      double sum = 0;
      for (const double value : values) sum += value;
      band.mean = sum / static_cast<double>(values.size());
      band.min = *std::min_element(values.begin(), values.end());
      band.max = *std::max_element(values.begin(), values.end());
      band.count = values.size();
      row.push_back(band);
    }
  }
  return rows;
}

bool Figure::has_spread() const {
  for (const auto& [x, by_series] : values_) {
    for (const auto& [name, values] : by_series) {
      if (values.size() > 1) return true;
    }
  }
  return false;
}

bool Figure::log_y() const {
  double low = std::numeric_limits<double>::infinity(), high = 0;
  for (const auto& [x, by_series] : values_) {
    for (const auto& [name, values] : by_series) {
      for (const double value : values) {
        if (!(value > 0)) continue;
        low = std::min(low, value);
        high = std::max(high, value);
      }
    }
  }
  // Nothing a log axis could show: linear (gnuplot fails on a plot without a point).
  if (!(high > 0)) return false;
  if (y_scale != Scale::automatic) return y_scale == Scale::log;
  return high > kLogSpan * low;
}

std::vector<std::vector<std::size_t>> Figure::overlapping() const {
  const auto rows = table();
  const bool log = log_y();
  // Where a mean is drawn: its logarithm on a log axis (nullopt: not drawn).
  auto drawn = [log](const std::optional<Band>& band) -> std::optional<double> {
    if (!band) return std::nullopt;
    if (!log) return band->mean;
    if (!(band->mean > 0)) return std::nullopt;
    return std::log10(band->mean);
  };
  double low = std::numeric_limits<double>::infinity();
  double high = -low;
  for (const auto& [x, row] : rows) {
    for (const auto& band : row) {
      if (!band) continue;
      for (const double value : {band->min, band->max}) {
        if (log && !(value > 0)) continue;
        const double shown = log ? std::log10(value) : value;
        low = std::min(low, shown);
        high = std::max(high, shown);
      }
    }
  }
  if (!log && y_scale == Scale::automatic) low = std::min(low, 0.0);  // the axis starts at 0
  const double tolerance = high > low ? kOverlap * (high - low) : 0;

  std::vector<std::vector<std::size_t>> groups;
  std::vector<bool> grouped(series_.size(), false);
  for (std::size_t i = 0; i < series_.size(); ++i) {
    if (grouped[i]) continue;
    std::vector<std::size_t> group = {i};
    for (std::size_t j = i + 1; j < series_.size(); ++j) {
      if (grouped[j]) continue;
      bool shared = false, apart = false;
      for (const auto& [x, row] : rows) {
        const auto a = drawn(row[i]);
        const auto b = drawn(row[j]);
        if (!a || !b) continue;
        shared = true;
        if (std::abs(*a - *b) > tolerance) {
          apart = true;
          break;
        }
      }
      if (shared && !apart) {
        group.push_back(j);
        grouped[j] = true;
      }
    }
    if (group.size() > 1) groups.push_back(std::move(group));
  }
  return groups;
}

std::vector<Figure::Markers> Figure::markers() const {
  const std::size_t count = values_.size();
  std::vector<Markers> result(series_.size());
  const auto groups = overlapping();
  if (count <= kMaxMarkers || as_points()) {
    for (const auto& group : groups) {
      // The first drawn is the largest: later ones sit inside it.
      const double grow = std::min(0.4, 1.6 / static_cast<double>(group.size() - 1));
      for (std::size_t k = 0; k < group.size(); ++k) {
        result[group[k]].size = 0.8 + grow * static_cast<double>(group.size() - 1 - k);
      }
    }
    return result;
  }
  const std::size_t step = (count + kMaxMarkers - 1) / kMaxMarkers;
  for (std::size_t i = 0; i < series_.size(); ++i) result[i] = {step, i % step, 0.8};
  for (const auto& group : groups) {
    for (std::size_t k = 0; k < group.size(); ++k) {
      result[group[k]] = {std::max(step, group.size()), k, 0.8};
    }
  }
  return result;
}

std::vector<std::string> Figure::caption() const {
  std::vector<std::string> lines;
  if (has_spread()) {
    lines.push_back((as_points() ? "markers: mean over " : "lines: mean over ") + spread_of_ +
                    (as_points() ? "; bars: from the lowest to the highest of them"
                                 : "; shaded: from the lowest to the highest of them"));
  }
  // Names that hold ", " (settings of several axes) are quoted in a list.
  const bool quote = std::any_of(series_.begin(), series_.end(), [](const std::string& name) {
    return name.find(", ") != std::string::npos;
  });
  const bool alternate = !as_points() && values_.size() > kMaxMarkers;
  for (const auto& group : overlapping()) {
    std::string names;
    if (group.size() == series_.size() && group.size() > 2) {
      names = fmt::format("all {} series", group.size());
    } else {
      for (std::size_t k = 0; k < group.size(); ++k) {
        const std::string name = quote ? "\"" + series_[group[k]] + "\"" : series_[group[k]];
        names += (k == 0 ? "" : k + 1 == group.size() ? " and " : ", ") + name;
      }
    }
    lines.push_back(names + " lie on top of each other (" +
                    (alternate ? "markers at alternate x" : "markers one inside another") +
                    (as_points() ? "" : ", dashed lines") + ")");
  }
  if (log_y()) {
    std::size_t left_out = 0;
    for (const auto& [x, by_series] : values_) {
      for (const auto& [name, values] : by_series) {
        left_out += static_cast<std::size_t>(
            std::count_if(values.begin(), values.end(), [](double v) { return !(v > 0); }));
      }
    }
    if (left_out > 0) {
      lines.push_back(
          fmt::format("log scale: {} value{} ≤ 0 not drawn", left_out, left_out == 1 ? "" : "s"));
    }
  }
  return lines;
}

void Figure::write_data(const fs::path& directory) const {
  write_file_atomically(directory / (stem_ + ".dat"), [this](std::ostream& out) {
    out << "# " << title_ << ": for each series the mean, lowest and highest of its n values at "
        << "this " << x_label_ << " (over " << spread_of_ << ")\n";
    out << "# " << x_label_;
    for (const std::string& name : series_) {
      out << "\t" << name << " mean\t" << name << " min\t" << name << " max\t" << name << " n";
    }
    out << "\n";
    out.precision(10);
    for (const auto& [x, row] : table()) {
      out << x;
      for (const auto& band : row) {
        if (band) {
          out << "\t" << band->mean << "\t" << band->min << "\t" << band->max << "\t"
              << band->count;
        } else {
          out << "\tNaN\tNaN\tNaN\t0";
        }
      }
      out << "\n";
    }
  });
}

std::string Figure::x_axis() const {
  std::ostringstream out;
  if (values_.empty()) return "";
  const double low = values_.begin()->first, high = values_.rbegin()->first;
  if (log_x) {
    out << "set logscale x 2\nset xtics (";
    bool first = true;
    for (const auto& [x, by_series] : values_) {
      out << (first ? "" : ", ") << gnuplot_string(fmt::format("{:g}", x)) << " "
          << fmt::format("{:g}", x);
      first = false;
    }
    out << ")\n" << fmt::format("set xrange [{:g}:{:g}]\n", low / 1.25, high * 1.25);
  } else if (integer_x) {
    // One x alone gets a range of one either side; the axis starts at a tick.
    const double step = integer_tick_step(high > low ? high - low : 2);
    const double from = std::floor((high > low ? low : low - 1) / step) * step;
    const double to = high > low ? high : high + 1;
    out << fmt::format("set xtics {:g}, {:g}\nset format x '%.0f'\n", from, step)
        << (step > 1 ? fmt::format("set mxtics {:g}\n", std::min(step, 5.0)) : "")
        << fmt::format("set xrange [{:g}:{:g}]\n", from, to);
  }
  return out.str();
}

std::string Figure::y_axis() const {
  // Lines along the top or bottom (a series at zero, weights near 1) stay
  // off the frame: a margin of 4% of the axis beyond the data, not widened
  // to the next tick (a loss axis went down to -0.05, a log axis up a
  // decade).
  const std::string margin = "set autoscale yfix\nset offsets 0, 0, graph 0.04, graph 0.04\n";
  if (log_y()) return "set logscale y\nset format y '%g'\n" + margin;
  return margin + (y_scale == Scale::automatic ? "set yrange [0:*]\n" : "");
}

std::string Figure::script() const {
  std::ostringstream out;
  std::vector<std::string> notes;
  for (const std::string& line : caption()) {
    for (std::string& part : wrapped(line, kCaptionWidth)) notes.push_back(std::move(part));
  }
  // Taller for a longer caption, so the plot keeps its height.
  out << fmt::format("set terminal pngcairo size 1000,{} font ',10'\n", 560 + 18 * notes.size())
      << "set output " << gnuplot_string(stem_ + ".png") << "\n"
      << "unset logscale\nunset label\nset xtics autofreq\nset mxtics default\n"
      << "set format x '% h'\nset format y '% h'\nset xrange [*:*]\nset yrange [*:*]\n"
      << "set title " << gnuplot_string(title_) << " noenhanced\n"
      << "set xlabel " << gnuplot_string(x_label_) << " noenhanced\n"
      << "set ylabel " << gnuplot_string(y_label_) << " noenhanced\n"
      << x_axis() << y_axis() << fmt::format("set bmargin {}\n", 4 + notes.size());
  for (std::size_t k = 0; k < notes.size(); ++k) {
    // In character units from the bottom left: the same place at any height.
    out << fmt::format(
        "set label {} {} at character 1, character {:.2f} left font ',9' noenhanced\n", k + 1,
        gnuplot_string(notes[k]), 0.7 + 1.1 * static_cast<double>(notes.size() - 1 - k));
  }

  // A series' column of the .dat file, as drawn: on a log axis, values that
  // are not positive are left out (the line breaks there).
  const bool log = log_y();
  auto column = [log](std::size_t number) {
    return log ? fmt::format("(${0} > 0 ? ${0} : NaN)", number) : fmt::format("(${})", number);
  };
  // Overlapping series get dash patterns: drawn later, over the first, the
  // gaps of their dashes show the one below.
  std::vector<int> dash(series_.size(), 1);
  for (const auto& group : overlapping()) {
    for (std::size_t k = 0; k < group.size(); ++k) dash[group[k]] = 1 + static_cast<int>(k % 5);
  }
  const std::vector<Markers> marks = markers();
  const bool spread = has_spread();
  const std::string data = gnuplot_string(stem_ + ".dat");
  std::vector<std::string> elements;
  for (std::size_t i = 0; i < series_.size(); ++i) {
    if (!spread || as_points()) break;
    elements.push_back(fmt::format(
        "{} using 1:{}:{} with filledcurves fc rgb '{}' fs transparent solid {} noborder notitle",
        data, column(3 + 4 * i), column(4 + 4 * i), series_style(i).colour,
        series_.size() <= 4 ? "0.2" : "0.12"));
  }
  for (std::size_t i = 0; i < series_.size(); ++i) {
    const SeriesStyle style = series_style(i);
    const std::string mean = column(2 + 4 * i);
    if (as_points()) {
      elements.push_back(
          spread ? fmt::format("{} using 1:{}:{}:{} with yerrorbars lc rgb '{}' pt {} ps {:.2f} "
                               "notitle",
                               data, mean, column(3 + 4 * i), column(4 + 4 * i), style.colour,
                               style.point_type, marks[i].size)
                 : fmt::format("{} using 1:{} with points lc rgb '{}' pt {} ps {:.2f} notitle",
                               data, mean, style.colour, style.point_type, marks[i].size));
    } else {
      elements.push_back(fmt::format("{} using 1:{} with lines lc rgb '{}' lw 1.5 dt {} notitle",
                                     data, mean, style.colour, dash[i]));
      elements.push_back(fmt::format(
          "{} using 1:{} every {}::{} with points lc rgb '{}' pt {} ps {:.2f} notitle", data, mean,
          marks[i].step, marks[i].offset, style.colour, style.point_type, marks[i].size));
    }
  }
  // The key: one entry per series, showing its line, dashes and marker.
  for (std::size_t i = 0; i < series_.size(); ++i) {
    const SeriesStyle style = series_style(i);
    elements.push_back(
        as_points()
            ? fmt::format("NaN with points lc rgb '{}' pt {} ps 0.8 title {} noenhanced",
                          style.colour, style.point_type, gnuplot_string(series_[i]))
            : fmt::format("NaN with linespoints lc rgb '{}' lw 1.5 dt {} pt {} ps 0.8 title {} "
                          "noenhanced",
                          style.colour, dash[i], style.point_type, gnuplot_string(series_[i])));
  }
  out << "plot ";
  for (std::size_t k = 0; k < elements.size(); ++k) {
    out << (k > 0 ? ", \\\n     " : "") << elements[k];
  }
  out << "\n\n";
  return out.str();
}

void draw_figures(const fs::path& directory, const std::vector<Figure>& figures) {
  std::ostringstream script;
  script << "# Written by `lorafed report`: gnuplot report.gp redraws the figures from the .dat "
            "files.\n"
         << "set terminal pngcairo size 1000,600 font ',10'\n"
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
