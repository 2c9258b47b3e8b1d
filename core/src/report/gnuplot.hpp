#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lorafed {

// What a figure shows of the values a series has at one x (seeds, or the
// clients of one rank): their mean, drawn as the line, and their lowest and
// highest, drawn as a shaded band (or error bars where the figure draws
// points only).
struct Band {
  double mean = 0;
  double min = 0;
  double max = 0;
  std::size_t count = 0;
};

// How a series is drawn: its colour, its marker (gnuplot point type) and its
// line's dash pattern. series_style(i) != series_style(j) in colour and
// marker together for i != j < 60; colours alone repeat after
// kPaletteSize series.
struct SeriesStyle {
  std::string colour;  // "#rrggbb"
  int point_type = 7;
  int dash_type = 1;
};
inline constexpr std::size_t kPaletteSize = 12;
SeriesStyle series_style(std::size_t index);

// a < b, comparing runs of digits as numbers: "client-2" < "client-10",
// "rank 4" < "rank 16".
bool natural_less(const std::string& a, const std::string& b);

// One figure: series of (x, y) points, where a series may have several
// values at one x. Written as <stem>.dat (x, then for each series its mean,
// min, max and the number of values; NaN and 0 where it has none) and drawn
// by the commands script() returns.
class Figure {
 public:
  enum class Scale {
    linear,
    log,  // values ≤ 0 are not drawn, and the caption says how many
    // log when the positive values span more than kLogSpan (the largest
    // over the smallest), else linear from zero
    automatic,
  };
  static constexpr double kLogSpan = 20;

  // `spread_of` names what several values at one x are ("seeds", "the
  // clients of the rank"), for the figure's caption.
  Figure(std::string stem, std::string title, std::string x_label, std::string y_label,
         std::string spread_of = "seeds");

  void add(const std::string& series, double x, double y);
  bool empty() const { return values_.empty(); }

  bool integer_x = false;  // x is a count (rounds): whole-number ticks only
  bool log_x = false;      // log2 axis with a tick at every x that has data (ranks)
  Scale y_scale = Scale::linear;
  bool points = false;  // points (and error bars) instead of lines (series of many clients)
  // Drawn as points: asked for, or one x only (a band needs two).
  bool as_points() const { return points || values_.size() == 1; }

  const std::string& stem() const { return stem_; }
  const std::vector<std::string>& series() const { return series_; }
  // Puts the series in natural_less order (the key and the styles follow it).
  void sort_series();
  // Each series' band at each x, nullopt where it has no value.
  std::map<double, std::vector<std::optional<Band>>> table() const;
  // Whether some series has more than one value at some x (a band is drawn).
  bool has_spread() const;
  // Whether the y axis is logarithmic (y_scale, automatic resolved).
  bool log_y() const;
  // Groups (of two or more, by index into series()) of series whose means
  // lie within kOverlap of the y axis's span of each other at every x where
  // both have a value, and that share at least one x: their lines are drawn
  // on top of each other.
  static constexpr double kOverlap = 0.005;
  std::vector<std::vector<std::size_t>> overlapping() const;
  // Where each series' markers go. A figure with at most kMaxMarkers x
  // values has a marker at every x; overlapping series there are drawn one
  // inside another (the first largest). With more x values a series has a
  // marker at every step-th x from its offset, and the members of an
  // overlapping group take turns, so each stays visible.
  static constexpr std::size_t kMaxMarkers = 15;
  struct Markers {
    std::size_t step = 1;
    std::size_t offset = 0;
    double size = 0.8;  // gnuplot point size
  };
  std::vector<Markers> markers() const;
  // What the figure's reader needs to know beyond the key: what the line and
  // band are, which series overlap, what a log axis leaves out.
  std::vector<std::string> caption() const;

  void write_data(const std::filesystem::path& directory) const;
  std::string script() const;  // gnuplot commands drawing <stem>.png from <stem>.dat

 private:
  // The x axis's ticks and range, and the y axis's, as gnuplot commands.
  std::string x_axis() const;
  std::string y_axis() const;

  std::string stem_, title_, x_label_, y_label_, spread_of_;
  std::vector<std::string> series_;  // in the order first added
  std::map<double, std::map<std::string, std::vector<double>>> values_;
};

// Writes <directory>/report.gp drawing every figure and runs gnuplot on it
// in `directory`. Throws Error when gnuplot is missing or fails.
void draw_figures(const std::filesystem::path& directory, const std::vector<Figure>& figures);

}  // namespace lorafed
