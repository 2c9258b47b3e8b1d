#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lorafed {

// One figure: series of (x, y) points, averaged where a series has several
// values at one x (seeds, or clients of one rank). Written as <stem>.dat
// (x, then one column per series; NaN where a series has no value) and
// drawn by the script that write_gnuplot_script() makes.
class Figure {
 public:
  Figure(std::string stem, std::string title, std::string x_label, std::string y_label);

  void add(const std::string& series, double x, double y);
  bool empty() const { return values_.empty(); }

  bool log_x = false;
  bool log_y = false;
  bool points = false;  // points instead of lines (sparse series)

  const std::string& stem() const { return stem_; }
  const std::vector<std::string>& series() const { return series_; }
  // The mean of each series at each x.
  std::map<double, std::vector<std::optional<double>>> table() const;

  void write_data(const std::filesystem::path& directory) const;
  std::string script() const;  // gnuplot commands drawing <stem>.png from <stem>.dat

 private:
  std::string stem_, title_, x_label_, y_label_;
  std::vector<std::string> series_;  // in the order first added
  std::map<double, std::map<std::string, std::vector<double>>> values_;
};

// Writes <directory>/report.gp drawing every figure and runs gnuplot on it
// in `directory`. Throws Error when gnuplot is missing or fails.
void draw_figures(const std::filesystem::path& directory, const std::vector<Figure>& figures);

}  // namespace lorafed
