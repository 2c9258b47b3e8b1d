#include "src/sweep/sweep_table.hpp"

#include <fmt/format.h>

#include <map>
#include <set>

#include "src/report/metric_format.hpp"
#include "src/statistics.hpp"

namespace lorafed {
namespace {

bool tabulated(const std::string& key, const nlohmann::json& value) {
  if (!value.is_number()) return false;
  if (key == "bytes_per_client_round" || key == "elapsed_s") return true;
  if (!key.starts_with("final_") && !key.starts_with("best_")) return false;
  return !key.ends_with("_round") && !key.ends_with("_std") &&
         key.find("clients_evaluated") == std::string::npos;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

}  // namespace

std::string headline_metric(const std::set<std::string>& summary_keys) {
  if (summary_keys.contains("final_accuracy")) return "accuracy";
  for (const std::string& key : summary_keys) {
    if (key.starts_with("final_") && !key.starts_with("final_federated_") && key != "final_loss") {
      return key.substr(6);
    }
  }
  return "loss";
}

SweepTables tabulate_sweep(const SweepPlan& plan,
                           const std::vector<std::optional<nlohmann::json>>& summaries) {
  std::set<std::string> keys;
  for (const auto& summary : summaries) {
    if (!summary) continue;
    for (const auto& [key, value] : summary->items()) {
      if (tabulated(key, value)) keys.insert(key);
    }
  }

  SweepTables tables;
  // Per run.
  std::string header;
  for (const std::string& axis : plan.axes) header += csv_field(axis) + ",";
  tables.runs_csv = header + "seed,status,directory";
  for (const std::string& key : keys) tables.runs_csv += "," + key;
  tables.runs_csv += "\n";
  // Groups in the order the grid first reaches them.
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::size_t>> members;
  for (std::size_t i = 0; i < plan.points.size(); ++i) {
    const SweepPoint& point = plan.points[i];
    if (!members.contains(point.group)) groups.push_back(point.group);
    members[point.group].push_back(i);
    std::string row;
    for (const auto& [axis, label] : point.labels) row += csv_field(label) + ",";
    row += std::to_string(point.seed) + "," + (summaries[i] ? "ok" : "failed") + "," +
           csv_field(point.name);
    for (const std::string& key : keys) {
      row += ",";
      if (summaries[i] && summaries[i]->contains(key)) {
        row += fmt::format("{:.10g}", (*summaries[i])[key].get<double>());
      }
    }
    tables.runs_csv += row + "\n";
  }

  // Per group, over seeds.
  tables.results_csv = header + "runs,failed";
  for (const std::string& key : keys) tables.results_csv += "," + key + "_mean," + key + "_std";
  tables.results_csv += "\n";
  const std::string metric = plan.metric.empty() ? headline_metric(keys) : plan.metric;
  std::vector<std::pair<std::string, std::string>> columns = {
      {"final_" + metric, "final " + metric}, {"best_" + metric, "best " + metric}};
  if (keys.contains("final_federated_" + metric)) {
    columns.emplace_back("final_federated_" + metric, "final per-client " + metric);
  }
  if (metric != "loss") columns.emplace_back("final_loss", "final loss");
  columns.emplace_back("bytes_per_client_round", "bytes / client / round");

  std::string md_header = "|";
  std::string md_rule = "|";
  for (const std::string& axis : plan.axes) {
    md_header += " " + axis + " |";
    md_rule += " --- |";
  }
  md_header += " seeds |";
  md_rule += " --- |";
  for (const auto& [key, title] : columns) {
    md_header += " " + title + (shown_in_percent(key) ? " %" : "") + " |";
    md_rule += " --- |";
  }
  tables.results_md = md_header + "\n" + md_rule + "\n";

  for (const std::string& group : groups) {
    const std::vector<std::size_t>& indices = members.at(group);
    const SweepPoint& first = plan.points[indices.front()];
    std::map<std::string, std::vector<double>> values;
    std::size_t failed = 0;
    for (const std::size_t i : indices) {
      if (!summaries[i]) {
        ++failed;
        continue;
      }
      for (const std::string& key : keys) {
        if (summaries[i]->contains(key)) values[key].push_back((*summaries[i])[key].get<double>());
      }
    }
    std::string row;
    for (const auto& [axis, label] : first.labels) row += csv_field(label) + ",";
    row += std::to_string(indices.size() - failed) + "," + std::to_string(failed);
    for (const std::string& key : keys) {
      const Spread value = spread(values[key]);
      if (value.count == 0) {
        row += ",,";
      } else {
        row += fmt::format(",{:.10g},{:.10g}", value.mean, value.std);
      }
    }
    tables.results_csv += row + "\n";

    std::string md = "|";
    for (const auto& [axis, label] : first.labels) md += " " + label + " |";
    md += " " + std::to_string(indices.size() - failed) +
          (failed > 0 ? " (" + std::to_string(failed) + " failed)" : "") + " |";
    for (const auto& [key, title] : columns) {
      md += " " + format_spread(key, spread(values[key])) + " |";
    }
    tables.results_md += md + "\n";
  }
  return tables;
}

}  // namespace lorafed
