#include "src/report/report.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "lorafed/error.hpp"
#include "src/report/gnuplot.hpp"
#include "src/report/metric_format.hpp"
#include "src/sdk/atomic_file.hpp"
#include "src/statistics.hpp"
#include "src/sweep/sweep_table.hpp"

namespace lorafed {
namespace {

namespace fs = std::filesystem;

// More clients than this in one FedHL run: its figures show ranks, not clients.
constexpr std::size_t kMaxClientSeries = 12;

std::string choose_metric(const std::vector<RunData>& runs, const std::string& requested) {
  if (!requested.empty()) return requested;
  std::set<std::string> keys;
  for (const RunData& run : runs) {
    for (const auto& [key, value] : run.summary.items()) keys.insert(key);
    if (run.summary.empty() && !run.rounds.empty()) {
      for (const auto& [key, value] : run.rounds.front().items()) keys.insert("final_" + key);
    }
  }
  return headline_metric(keys);
}

// The settings in the order first seen, each with its runs.
std::vector<std::pair<std::string, std::vector<const RunData*>>> settings_of(
    const std::vector<RunData>& runs) {
  std::vector<std::pair<std::string, std::vector<const RunData*>>> settings;
  for (const RunData& run : runs) {
    auto found = std::find_if(settings.begin(), settings.end(),
                              [&](const auto& entry) { return entry.first == run.label; });
    if (found == settings.end()) {
      settings.emplace_back(run.label, std::vector<const RunData*>{});
      found = settings.end() - 1;
    }
    found->second.push_back(&run);
  }
  return settings;
}

// The last round that has client evaluations, or -1.
int last_evaluated_round(const RunData& run) {
  int last = -1;
  for (const nlohmann::json& line : run.clients) {
    if (line.value("phase", "") == "evaluate" && line.value("status", "") == "ok") {
      last = std::max(last, line.value("round", -1));
    }
  }
  return last;
}

std::map<std::string, std::int64_t> client_ranks(const RunData& run) {
  std::map<std::string, std::int64_t> ranks;
  for (const nlohmann::json& line : run.clients) {
    if (line.contains("rank") && line.contains("client")) {
      ranks[line["client"].get<std::string>()] = line["rank"].get<std::int64_t>();
    }
  }
  return ranks;
}

struct FedHlFigures {
  Figure truncation;
  Figure weights;
  std::map<std::int64_t, std::vector<double>> weight_by_rank;  // for the text
  std::map<std::int64_t, std::vector<double>> error_by_rank;
};

FedHlFigures fedhl_figures(const RunData& run, std::size_t index, const std::string& setting) {
  const std::string title = setting + ", seed " + std::to_string(run.seed);
  const auto ranks = client_ranks(run);
  const bool by_client = ranks.size() <= kMaxClientSeries;
  // A series is one client, or the clients of one rank (one seed either way).
  const std::string spread_of = by_client ? "one client" : "the clients of the rank";
  FedHlFigures figures{
      Figure("fedhl_truncation_" + std::to_string(index),
             "FedHL truncation error per client: " + title, "round",
             "truncation error ||W - W_r||_F^2", spread_of),
      Figure("fedhl_weights_" + std::to_string(index),
             "FedHL aggregation weight per client: " + title, "round", "weight p_i", spread_of),
      {},
      {}};
  for (Figure* figure : {&figures.truncation, &figures.weights}) {
    figure->integer_x = true;
    figure->y_scale = Figure::Scale::automatic;  // weights of 0.003 and 0.95 in one figure
  }
  auto series = [&](const std::string& client) {
    const auto rank = ranks.find(client);
    const std::string r = rank == ranks.end() ? "?" : std::to_string(rank->second);
    return by_client ? client + " (r " + r + ")" : "rank " + r;
  };
  for (const nlohmann::json& round : run.rounds) {
    const double x = round.value("round", 0);
    for (const auto& [key, value] : round.items()) {
      if (!value.is_number()) continue;
      for (const auto& [prefix, figure, by_rank] :
           {std::tuple{std::string("strategy_truncation_error/"), &figures.truncation,
                       &figures.error_by_rank},
            std::tuple{std::string("strategy_weight/"), &figures.weights,
                       &figures.weight_by_rank}}) {
        if (!key.starts_with(prefix)) continue;
        const std::string client = key.substr(prefix.size());
        figure->add(series(client), x, value.get<double>());
        if (const auto rank = ranks.find(client); rank != ranks.end()) {
          (*by_rank)[rank->second].push_back(value.get<double>());
        }
      }
    }
  }
  figures.truncation.points = figures.weights.points = !by_client;
  // The key in the clients' or the ranks' order: client-2 before client-10, rank 4 before rank 16.
  figures.truncation.sort_series();
  figures.weights.sort_series();
  return figures;
}

std::string setting_summary_table(
    const std::vector<std::pair<std::string, std::vector<const RunData*>>>& settings,
    const std::string& metric, std::vector<std::pair<std::string, Spread>>& ranking) {
  bool federated = false;
  for (const auto& [label, runs] : settings) {
    for (const RunData* run : runs) federated |= run->summary.contains("final_federated_" + metric);
  }
  std::string table =
      fmt::format("| setting | runs | final {0} | best {0} |", metric_label(metric));
  std::string rule = "| --- | --- | --- | --- |";
  if (federated) {
    table += fmt::format(" final per-client {} |", metric_label(metric));
    rule += " --- |";
  }
  table += " bytes / client / round |\n" + rule + " --- |\n";
  auto values = [&](const std::vector<const RunData*>& runs, const std::string& key) {
    std::vector<double> result;
    for (const RunData* run : runs) {
      if (run->summary.contains(key) && run->summary[key].is_number()) {
        result.push_back(run->summary[key].get<double>());
      }
    }
    return spread(result);
  };
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& [label, runs] : settings) {
    const Spread final_value = values(runs, "final_" + metric);
    ranking.emplace_back(label, final_value);
    std::string row =
        fmt::format("| {} | {} | {} | {} |", label, runs.size(), format_spread(metric, final_value),
                    format_spread(metric, values(runs, "best_" + metric)));
    if (federated)
      row += " " + format_spread(metric, values(runs, "final_federated_" + metric)) + " |";
    const Spread bytes = values(runs, "bytes_per_client_round");
    row += bytes.count > 0 ? fmt::format(" {:.0f} |", bytes.mean) : std::string(" — |");
    rows.emplace_back(label, row);
  }
  // Best first.
  const bool lower = lower_is_better(metric);
  std::stable_sort(ranking.begin(), ranking.end(), [lower](const auto& a, const auto& b) {
    if (a.second.count == 0 || b.second.count == 0) return a.second.count > b.second.count;
    return lower ? a.second.mean < b.second.mean : a.second.mean > b.second.mean;
  });
  for (const auto& [label, spread_value] : ranking) {
    const auto row = std::find_if(rows.begin(), rows.end(),
                                  [&](const auto& entry) { return entry.first == label; });
    table += row->second + "\n";
  }
  return table;
}

}  // namespace

fs::path write_report(const std::vector<RunData>& runs, const ReportOptions& options) {
  if (runs.empty()) throw Error("nothing to report: no run was read");
  const std::string metric = choose_metric(runs, options.metric);
  const auto settings = settings_of(runs);
  fs::create_directories(options.output_dir);

  Figure metric_figure("metric", "global " + metric + " per round", "round", metric_label(metric));
  Figure loss("loss", "global loss per round", "round", "loss");
  metric_figure.integer_x = loss.integer_x = true;
  loss.y_scale = Figure::Scale::automatic;  // log where it falls a thousandfold (linear task)
  Figure by_rank("client_metric_by_rank",
                 "each client's " + metric + " at its own rank after the last round", "rank",
                 metric_label(metric), "the clients of the rank and the seeds");
  by_rank.log_x = true;
  // Each setting's bytes per round, per run; drawn in kB or MB once all are known.
  std::vector<std::tuple<std::string, int, double>> moved_bytes;
  std::vector<FedHlFigures> fedhl;
  std::vector<std::string> fedhl_settings;

  for (const auto& [label, members] : settings) {
    for (const RunData* run : members) {
      for (const nlohmann::json& round : run->rounds) {
        const double x = round.value("round", 0);
        if (round.contains(metric) && round[metric].is_number()) {
          metric_figure.add(label, x, shown_value(metric, round[metric].get<double>()));
        }
        if (metric != "loss" && round.contains("loss") && round["loss"].is_number()) {
          loss.add(label, x, round["loss"].get<double>());
        }
      }
      std::map<int, double> moved;
      const int last = last_evaluated_round(*run);
      for (const nlohmann::json& line : run->clients) {
        if (line.value("status", "") != "ok") continue;
        if (line.value("phase", "") == "fit") {
          moved[line.value("round", 0)] +=
              line.value("bytes_down", 0.0) + line.value("bytes_up", 0.0);
        } else if (line.value("round", -2) == last && line.contains(metric) &&
                   line.contains("rank")) {
          by_rank.add(label, line["rank"].get<double>(),
                      shown_value(metric, line[metric].get<double>()));
        }
      }
      for (const auto& [round, total] : moved) moved_bytes.emplace_back(label, round, total);
    }
    // FedHL's figures for the setting's first run (one seed shows the pattern).
    const RunData* first = members.front();
    if (first->summary.value("strategy", "") == "fedhl") {
      fedhl.push_back(fedhl_figures(*first, fedhl.size() + 1, label));
      fedhl_settings.push_back(label);
    }
  }

  double most_bytes = 0;
  for (const auto& [label, round, total] : moved_bytes) most_bytes = std::max(most_bytes, total);
  const bool megabytes = most_bytes >= 1e6;
  Figure bytes("bytes", "bytes moved per round by training (down + up, all clients)", "round",
               megabytes ? "MB" : "kB");
  bytes.integer_x = true;
  // Linear from zero unless one series moves more than 20 times another's bytes.
  bytes.y_scale = Figure::Scale::automatic;
  for (const auto& [label, round, total] : moved_bytes) {
    bytes.add(label, round, total / (megabytes ? 1e6 : 1e3));
  }

  std::vector<Figure> figures;
  for (Figure* figure : {&metric_figure, &loss, &by_rank, &bytes}) {
    if (!figure->empty()) figures.push_back(*figure);
  }
  for (const FedHlFigures& entry : fedhl) {
    if (!entry.truncation.empty()) figures.push_back(entry.truncation);
    if (!entry.weights.empty()) figures.push_back(entry.weights);
  }
  draw_figures(options.output_dir, figures);
  auto drawn = [&](const std::string& stem) -> const Figure* {
    const auto found = std::find_if(figures.begin(), figures.end(),
                                    [&](const Figure& figure) { return figure.stem() == stem; });
    return found == figures.end() ? nullptr : &*found;
  };
  // What the figure's caption says (band, overlapping series, log scale), as a sentence.
  auto notes = [](const Figure& figure, const std::string& which = "the figure") {
    std::string text;
    for (const std::string& line : figure.caption()) text += (text.empty() ? "" : "; ") + line;
    return text.empty() ? text : "In " + which + ": " + text + ".";
  };

  // report.md
  std::vector<std::pair<std::string, Spread>> ranking;
  const std::string table = setting_summary_table(settings, metric, ranking);
  std::string md = "# lorafed report\n\n";
  md += fmt::format("{} runs in {} settings", runs.size(), settings.size());
  md += runs.size() > settings.size()
            ? " (in the figures, a setting's line is the mean over its seeds and the shaded "
              "band spans the lowest to the highest seed)"
            : "";
  md +=
      ". Written by `lorafed report`; `gnuplot report.gp` redraws the figures from the "
      ".dat files.\n\n## Which setting wins\n\n";
  md += table + "\n";
  if (ranking.size() > 1 && ranking[0].second.count > 0 && ranking[1].second.count > 0) {
    const double gap = std::abs(ranking[0].second.mean - ranking[1].second.mean);
    const double noise = std::max(ranking[0].second.std, ranking[1].second.std);
    const std::string ahead = shown_in_percent(metric) ? fmt::format("{:.2f} points", 100 * gap)
                                                       : fmt::format("{:.4g}", gap);
    md += fmt::format(
        "**{}** has the best final {}: {}, {} ahead of {} ({}){}.\n\n", ranking[0].first, metric,
        format_spread(metric, ranking[0].second), ahead, ranking[1].first,
        format_spread(metric, ranking[1].second),
        noise > 0 && gap < noise ? "; the gap is within one standard deviation over seeds" : "");
  }
  auto section = [&](const std::string& stem, const std::string& heading, std::string text) {
    const Figure* figure = drawn(stem);
    if (figure == nullptr) return;
    const std::string note = notes(*figure);
    text += (text.empty() || note.empty() ? "" : " ") + note;
    md += "## " + heading + "\n\n" + text + (text.empty() ? "" : "\n\n") + "![" + heading + "](" +
          stem + ".png)\n\n";
  };
  section("metric", "Global " + metric + " per round",
          "The server's evaluation of the global model (personalised strategies: the mean over "
          "clients of their own models).");
  section("loss", "Global loss per round", "");
  section("client_metric_by_rank", "Each client's " + metric + " at its rank",
          "After the last round, each client's own model (its truncation of the global model, "
          "or the global model where every client shares it) on its own test split; the mean "
          "over the clients of each rank and over seeds.");
  section("bytes", "Bytes moved per round",
          "Every byte of the encoded fit instructions and results, envelopes included, summed "
          "over the round's clients.");
  for (std::size_t i = 0; i < fedhl.size(); ++i) {
    const std::string index = std::to_string(i + 1);
    const Figure* weights = drawn("fedhl_weights_" + index);
    if (weights == nullptr) continue;
    std::string text =
        "FedHL weighs client i by p_i ∝ 1 / (r̂_i² + ε), r̂_i its truncation error (ε "
        "scaled by the round's mean r̂ squared under epsilon_scale = \"relative\"; "
        "docs/algorithms.md §FedHL). Mean over rounds, by rank:";
    for (const auto& [rank, weights] : fedhl[i].weight_by_rank) {
      const Spread weight = spread(weights);
      const Spread error = spread(fedhl[i].error_by_rank[rank]);
      text += fmt::format(" rank {}: error {:.3g}, weight {:.3g};", rank, error.mean, weight.mean);
    }
    text.back() = '.';
    for (const auto& [stem, which] :
         {std::pair{"fedhl_truncation_", "the truncation errors' figure"},
          std::pair{"fedhl_weights_", "the weights' figure"}}) {
      const Figure* figure = drawn(stem + index);
      if (const std::string note = figure ? notes(*figure, which) : ""; !note.empty()) {
        text += " " + note;
      }
    }
    md += "## FedHL: " + fedhl_settings[i] + "\n\n" + text + "\n\n";
    md += "![truncation errors](fedhl_truncation_" + index + ".png)\n\n";
    md += "![weights](fedhl_weights_" + index + ".png)\n\n";
  }
  md += "## Runs\n\n";
  for (const RunData& run : runs) {
    md += "- " + run.label + ", seed " + std::to_string(run.seed) + ": `" + run.directory.string() +
          "`\n";
  }
  const fs::path markdown = options.output_dir / "report.md";
  write_file_atomically(markdown, [&md](std::ostream& out) { out << md; });
  return markdown;
}

}  // namespace lorafed
