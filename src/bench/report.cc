// The HTML report of `baton bench --report`: five figures/tables as inline SVG and HTML, no scripts.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "baton/bench.h"
#include "bench/svg.h"

namespace baton {
namespace {

using svg::Escape;
using svg::Num;

constexpr const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                    "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f"};
constexpr const char* kTierColor[] = {"#8fd175", "#f2c14e", "#e0605e"};
constexpr const char* kTierName[] = {"cheap", "mid", "expensive"};

std::string Opt(const std::optional<double>& v, int digits = 3) {
  return v ? fmt::format("{:.{}f}", *v, digits) : "&ndash;";
}
std::string Fix(double v, int digits = 3) {
  return std::isfinite(v) ? fmt::format("{:.{}f}", v, digits) : "&ndash;";
}

// Figure 1: accuracy vs cost per query (log), every router curve and every single expert.
std::string CostAccuracyFigure(const BenchResult& r) {
  const double W = 1120, H = 600, left = 80, right = 800, top = 20, bottom = 530;
  double cmin = INFINITY, cmax = 0, amin = INFINITY, amax = -INFINITY;
  auto see = [&](double c, double a) {
    if (std::isfinite(c) && c > 0) cmin = std::min(cmin, c), cmax = std::max(cmax, c);
    if (std::isfinite(a)) amin = std::min(amin, a), amax = std::max(amax, a);
  };
  for (const auto& s : r.singles) see(s.cost_per_query, s.accuracy);
  for (const auto& x : r.routers)
    for (const auto& p : x.curve) see(p.cost_per_query, p.accuracy);
  for (const auto& p : r.cascade.curve) see(p.cost_per_query, p.accuracy);
  see(r.oracle.cost_per_query, r.oracle.accuracy);
  see(r.random.cost_per_query, r.random.accuracy);
  if (!std::isfinite(cmin)) cmin = 1e-6, cmax = 1e-3;
  if (cmax <= cmin) cmax = cmin * 10;
  if (!std::isfinite(amin)) amin = 0, amax = 1;
  svg::Scale x{.lo = cmin / 1.5, .hi = cmax * 1.5, .px_lo = left, .px_hi = right, .log = true};
  svg::Scale y{.lo = std::max(0.0, std::floor(amin * 20 - 1) / 20),
               .hi = std::min(1.0, std::ceil(amax * 20 + 0.5) / 20),
               .px_lo = bottom,
               .px_hi = top};
  auto px = [&](double c) { return x.Map(std::max(c, x.lo)); };
  svg::SvgWriter w(W, H);
  w.Axes(x, y, "realised cost per query (USD, log scale)", "realised accuracy on test");
  // Single experts: grey dots with names; the best single in black.
  std::vector<std::pair<double, double>> placed;  // label positions
  for (const auto& s : r.singles) {
    if (!std::isfinite(s.accuracy)) continue;
    const bool best = s.expert == r.best_single.expert;
    w.Marker("circle", px(s.cost_per_query), y.Map(s.accuracy), best ? 5 : 4, best ? "#000" : "#999",
             fmt::format("{}: accuracy {:.3f}, ${:.3g}/query", s.expert, s.accuracy, s.cost_per_query));
    std::string name = s.expert.substr(s.expert.rfind('/') == std::string::npos ? 0 : s.expert.rfind('/') + 1);
    // Move a label down until it clears the labels already placed near it (experts at equal prices coincide).
    double lx = px(s.cost_per_query) + 6, lyy = y.Map(s.accuracy) + 3;
    for (bool moved = true; moved;) {
      moved = false;
      for (const auto& [px0, py0] : placed) {
        if (std::abs(px0 - lx) < 90 && std::abs(py0 - lyy) < 10) lyy = py0 + 10, moved = true;
      }
    }
    placed.emplace_back(lx, lyy);
    w.Text(lx, lyy, name, 9, "start", best ? "#000" : "#777");
  }
  double ly = top + 10;
  auto legend_line = [&](std::string_view color, double width, std::string_view dash, const std::string& label) {
    w.Line(right + 20, ly, right + 50, ly, color, width, dash);
    w.Text(right + 58, ly + 4, label, 12);
    ly += 20;
  };
  auto legend_marker = [&](std::string_view shape, std::string_view color, const std::string& label) {
    w.Marker(shape, right + 35, ly, 5, color);
    w.Text(right + 58, ly + 4, label, 12);
    ly += 20;
  };
  for (size_t i = 0; i < r.routers.size(); ++i) {
    const RouterResult& rr = r.routers[i];
    std::vector<CurvePoint> pts = rr.curve;
    std::sort(pts.begin(), pts.end(),
              [](const CurvePoint& a, const CurvePoint& b) { return a.cost_per_query < b.cost_per_query; });
    std::vector<std::pair<double, double>> line;
    for (const auto& p : pts) line.emplace_back(px(p.cost_per_query), y.Map(p.accuracy));
    const char* color = kPalette[i % std::size(kPalette)];
    // Thin lines with a dash pattern per router, so that overlapping curves stay distinguishable.
    static constexpr const char* kDash[] = {"", "7,3", "2,2", "9,3,2,3", "4,4", "12,4", "1,3", "6,2,2,2,2,2"};
    const char* dash = rr.is_default ? "" : kDash[(i + 1) % std::size(kDash)];
    const double width = rr.is_default ? 2.2 : 1.2;
    w.Polyline(line, color, width, dash);
    for (const auto& [a, b] : line) w.Circle(a, b, rr.is_default ? 2.2 : 1.5, color);
    legend_line(color, width, dash, rr.name + (rr.is_default ? " (default)" : ""));
  }
  {
    std::vector<std::pair<double, double>> line;
    std::vector<CurvePoint> pts = r.cascade.curve;
    std::sort(pts.begin(), pts.end(),
              [](const CurvePoint& a, const CurvePoint& b) { return a.cost_per_query < b.cost_per_query; });
    for (const auto& p : pts) line.emplace_back(px(p.cost_per_query), y.Map(p.accuracy));
    w.Polyline(line, "#555", 1.5, "6,4");
    legend_line("#555", 1.5, "6,4", "cascade (FrugalGPT-style)");
  }
  w.Marker("star", px(r.oracle.cost_per_query), y.Map(r.oracle.accuracy), 6, "#e6b800",
           fmt::format("oracle: accuracy {:.3f}, ${:.3g}/query", r.oracle.accuracy, r.oracle.cost_per_query));
  w.Marker("triangle", px(r.random.cost_per_query), y.Map(r.random.accuracy), 5, "#444",
           fmt::format("random: accuracy {:.3f}, ${:.3g}/query", r.random.accuracy, r.random.cost_per_query));
  legend_marker("star", "#e6b800", "oracle");
  legend_marker("triangle", "#444", "random router");
  legend_marker("circle", "#999", "single experts");
  legend_marker("circle", "#000", "best single");
  return w.Finish();
}

// Figure 2: per-domain accuracy, default router vs best single.
std::string DomainFigure(const BenchResult& r, const RouterResult& def) {
  const size_t nd = r.domains.size();
  const double left = 250, right = 790, top = 40, row = 28;
  const double H = top + row * static_cast<double>(nd) + 50;
  svg::SvgWriter w(1060, H);
  svg::Scale x{.lo = 0, .hi = 1, .px_lo = left, .px_hi = right};
  for (double v : x.Ticks()) {
    w.Line(x.Map(v), top, x.Map(v), H - 50, "#e4e4e4");
    w.Text(x.Map(v), H - 34, Num(v), 11, "middle", "#444");
  }
  w.Text((left + right) / 2, H - 12, "accuracy on test", 13, "middle");
  for (size_t d = 0; d < nd; ++d) {
    const double y0 = top + row * static_cast<double>(d);
    std::string name = r.domains[d].empty() ? "(none)" : r.domains[d];
    if (name.size() > 36) name = name.substr(0, 34) + "...";
    w.Text(left - 8, y0 + 17, name, 12, "end");
    const double a = d < def.domain_accuracy.size() ? def.domain_accuracy[d] : NAN;
    const double b = d < r.best_single_domain_accuracy.size() ? r.best_single_domain_accuracy[d] : NAN;
    if (std::isfinite(a)) {
      w.Rect(left, y0 + 3, x.Map(a) - left, 11, kPalette[0], fmt::format("{}: {:.3f}", def.name, a));
      w.Text(x.Map(a) + 4, y0 + 12, fmt::format("{:.3f}", a), 9, "start", "#333");
    }
    if (std::isfinite(b)) {
      w.Rect(left, y0 + 14, x.Map(b) - left, 11, "#aaa", fmt::format("{}: {:.3f}", r.best_single.expert, b));
      w.Text(x.Map(b) + 4, y0 + 23, fmt::format("{:.3f}", b), 9, "start", "#666");
    }
  }
  w.Rect(right + 30, top, 14, 10, kPalette[0]);
  w.Text(right + 50, top + 9, def.name + " (default)", 12);
  w.Rect(right + 30, top + 20, 14, 10, "#aaa");
  w.Text(right + 50, top + 29, "best single", 12);
  return w.Finish();
}

// Figure 3: routing share by price tier for the default router at a few budgets.
std::string TierFigure(const BenchResult& r, const RouterResult& def) {
  const double left = 330, right = 880, top = 30, row = 34;
  const double H = top + row * static_cast<double>(def.tiers.size()) + 50;
  svg::SvgWriter w(1000, H);
  svg::Scale x{.lo = 0, .hi = 1, .px_lo = left, .px_hi = right};
  for (double v : x.Ticks()) w.Text(x.Map(v), H - 34, Num(v), 11, "middle", "#444");
  w.Text((left + right) / 2, H - 12, "share of test queries", 13, "middle");
  for (size_t i = 0; i < def.tiers.size(); ++i) {
    const TierShare& t = def.tiers[i];
    const double y0 = top + row * static_cast<double>(i);
    w.Text(left - 8, y0 + 13,
           fmt::format("budget {:.0f}% of best single (${:.3g})", 100 * t.budget_fraction,
                       t.budget_fraction * r.best_single.cost_per_query),
           12, "end");
    if (!std::isfinite(t.accuracy)) {
      w.Text(left + 4, y0 + 16, "no operating point within this budget", 11, "start", "#888");
      continue;
    }
    w.Text(left - 8, y0 + 26, fmt::format("accuracy {:.3f} at ${:.3g}/query", t.accuracy, t.cost_per_query), 10, "end",
           "#666");
    double at = left;
    for (int k = 0; k < 3; ++k) {
      const double s = std::isfinite(t.share[k]) ? t.share[k] : 0;
      const double wpx = s * (right - left);
      w.Rect(at, y0 + 2, wpx, 24, kTierColor[k], fmt::format("{}: {:.1f}%", kTierName[k], 100 * s));
      if (s >= 0.06) w.Text(at + wpx / 2, y0 + 18, fmt::format("{:.0f}%", 100 * s), 11, "middle");
      at += wpx;
    }
  }
  for (int k = 0; k < 3; ++k) {
    w.Rect(left + 140.0 * k, 6, 14, 12, kTierColor[k]);
    w.Text(left + 140.0 * k + 20, 16, fmt::format("{} experts", kTierName[k]), 12);
  }
  return w.Finish();
}

// Figure 4: the universe constructor's S(U) after each greedy pick.
std::string UniverseFigure(const BenchResult& r) {
  const double W = 1000, H = 470, left = 80, right = 940, top = 160, bottom = 410;
  const size_t k = r.universe.size();
  svg::SvgWriter w(W, H);
  if (k == 0) return w.Finish();
  double smin = r.universe.front().s, smax = r.universe.back().s;
  for (const auto& u : r.universe) smin = std::min(smin, u.s), smax = std::max(smax, u.s);
  svg::Scale x{.lo = 0.5, .hi = static_cast<double>(k) + 0.5, .px_lo = left, .px_hi = right};
  svg::Scale y{.lo = std::max(0.0, std::floor(smin * 20 - 1) / 20),
               .hi = std::min(1.0, std::ceil(smax * 20 + 0.2) / 20),
               .px_lo = bottom,
               .px_hi = top};
  w.Axes(x, y, "experts picked (greedy order)", "S(U) on train");
  std::vector<std::pair<double, double>> line;
  for (size_t i = 0; i < k; ++i) line.emplace_back(x.Map(static_cast<double>(i + 1)), y.Map(r.universe[i].s));
  w.Polyline(line, kPalette[0], 2);
  for (size_t i = 0; i < k; ++i) {
    const auto& u = r.universe[i];
    w.Marker("circle", line[i].first, line[i].second, 4, kPalette[0],
             fmt::format("{}: S = {:.4f}, ${:.3g}/query", u.expert, u.s, u.cost_per_query));
    std::string name = u.expert.substr(u.expert.rfind('/') == std::string::npos ? 0 : u.expert.rfind('/') + 1);
    // Names sit in a row above the plot (rotated), joined to their point by a faint leader line.
    w.Line(line[i].first, line[i].second - 5, line[i].first, top - 4, "#ccc", 0.8, "2,2");
    w.Text(line[i].first + 2, top - 8, fmt::format("{}. {}", i + 1, name), 10, "start", "#333", -40);
  }
  return w.Finish();
}

// Figure 6: the default router's calibration, mean realised vs mean predicted score per bin, one line per expert.
std::string CalibrationFigure(const BenchResult& r) {
  const double W = 1000, H = 560, left = 80, right = 560, top = 20, bottom = 500;
  svg::Scale x{.lo = 0, .hi = 1, .px_lo = left, .px_hi = right};
  svg::Scale y{.lo = 0, .hi = 1, .px_lo = bottom, .px_hi = top};
  svg::SvgWriter w(W, H);
  w.Axes(x, y, "predicted score (mean per bin)", "realised score on test (mean per bin)");
  w.Line(x.Map(0), y.Map(0), x.Map(1), y.Map(1), "#888", 1, "4,3");  // perfect calibration
  double ly = top + 10;
  for (size_t e = 0; e < r.calibration.size() && e < r.experts.size(); ++e) {
    const char* color = kPalette[e % std::size(kPalette)];
    std::vector<std::pair<double, double>> pts;
    for (const CalibrationBin& b : r.calibration[e]) {
      if (b.count == 0 || !std::isfinite(b.predicted) || !std::isfinite(b.realised)) continue;
      const double px = x.Map(std::clamp(b.predicted, 0.0, 1.0)), py = y.Map(std::clamp(b.realised, 0.0, 1.0));
      pts.emplace_back(px, py);
      w.Marker("circle", px, py, 3.5, color,
               fmt::format("{}: predicted {:.3f}, realised {:.3f} ({} cells)", r.experts[e], b.predicted, b.realised,
                           b.count));
    }
    if (pts.size() > 1) w.Polyline(pts, color, 1.5);
    w.Line(right + 30, ly, right + 60, ly, color, 2);
    w.Text(right + 68, ly + 4, r.experts[e], 11);
    ly += 18;
  }
  w.Line(right + 30, ly, right + 60, ly, "#888", 1, "4,3");
  w.Text(right + 68, ly + 4, "perfect calibration", 11);
  return w.Finish();
}

// Table 7: per domain, the share of its test queries the default router sent to each expert.
std::string DomainShareTable(const BenchResult& r) {
  std::string h = "<table class=\"share\"><tr><th>domain</th>";
  for (const std::string& e : r.experts) h += "<th>" + Escape(e) + "</th>";
  h += "</tr>\n";
  for (size_t d = 0; d < r.domains.size() && d < r.domain_share.size(); ++d) {
    h += "<tr><td>" + Escape(r.domains[d].empty() ? "(none)" : r.domains[d]) + "</td>";
    for (size_t e = 0; e < r.experts.size(); ++e) {
      const double v = e < r.domain_share[d].size() ? r.domain_share[d][e] : NAN;
      // Shade by share so the dominant expert per domain stands out without a figure.
      const int shade = std::isfinite(v) ? static_cast<int>(255 - 80 * v) : 255;
      h += fmt::format("<td style=\"background:rgb({0},{0},255)\">{1}</td>", shade,
                       std::isfinite(v) ? fmt::format("{:.0f}%", 100 * v) : "&ndash;");
    }
    h += "</tr>\n";
  }
  return h + "</table>\n";
}

// "0.871 [0.862, 0.880]" when the bootstrap ran, else the value alone.
std::string WithCi(const std::string& value, const std::optional<ConfidenceInterval>& ci, int digits,
                   const char* unit = "") {
  if (!ci) return value;
  return fmt::format("{} <small>[{:.{}f}{}, {:.{}f}{}]</small>", value, ci->lo, digits, unit, ci->hi, digits, unit);
}

std::string MetricsTable(const BenchResult& r) {
  const bool two = r.experts.size() == 2;
  std::string h =
      "<table><tr><th>router</th><th>AIQ</th><th>cost at 95% of best single</th>"
      "<th>accuracy at best single's cost</th>";
  if (two) h += "<th>APGR</th><th>CPT(50%)</th><th>CPT(80%)</th>";
  h += "<th>CV AIQ (train folds)</th><th>train s</th></tr>\n";
  auto row = [&](const RouterResult& x, const std::string& label) {
    h += fmt::format(
        "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td>", x.is_default ? " class=\"def\"" : "", label,
        WithCi(Fix(x.aiq, 4), x.ci.aiq, 4),
        WithCi(x.cost_at_95 ? fmt::format("{:.3f}&times;", *x.cost_at_95) : "never", x.ci.cost_at_95, 3, "&times;"),
        WithCi(Opt(x.acc_at_best_single_cost), x.ci.acc_at_best_single_cost, 3));
    if (two) h += fmt::format("<td>{}</td><td>{}</td><td>{}</td>", Opt(x.apgr), Opt(x.cpt50), Opt(x.cpt80));
    h += fmt::format("<td>{}</td><td>{}</td></tr>\n", Fix(x.cv_aiq, 4), Fix(x.train_seconds, 1));
  };
  for (const RouterResult& x : r.routers) row(x, Escape(x.name) + (x.is_default ? " <b>(default)</b>" : ""));
  row(r.cascade, "cascade (FrugalGPT-style, baseline)");
  h += "</table>\n<h3>Baselines</h3>\n<table><tr><th>baseline</th><th>accuracy</th><th>cost per query (USD)</th>"
       "<th>price tier</th></tr>\n";
  h += fmt::format("<tr><td>oracle</td><td>{}</td><td>{:.3g}</td><td></td></tr>\n", Fix(r.oracle.accuracy),
                   r.oracle.cost_per_query);
  h += fmt::format("<tr><td>random router</td><td>{}</td><td>{:.3g}</td><td></td></tr>\n", Fix(r.random.accuracy),
                   r.random.cost_per_query);
  std::vector<size_t> order(r.singles.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return r.singles[a].accuracy > r.singles[b].accuracy; });
  for (size_t i : order) {
    const ExpertPoint& s = r.singles[i];
    h += fmt::format("<tr{}><td>{}</td><td>{}</td><td>{:.3g}</td><td>{}</td></tr>\n",
                     s.expert == r.best_single.expert ? " class=\"def\"" : "", Escape(s.expert), Fix(s.accuracy),
                     s.cost_per_query,
                     i < r.expert_tier.size() && !r.prices_degenerate ? kTierName[r.expert_tier[i]] : "-");
  }
  return h + "</table>\n";
}

}  // namespace

std::string RenderBenchReport(const BenchResult& r, const std::string& title) {
  const RouterResult* def = nullptr;
  for (const RouterResult& x : r.routers)
    if (x.is_default) def = &x;
  std::string html =
      fmt::format(R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{0}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 24px 40px; color: #222; max-width: 1160px; }}
h1 {{ font-size: 24px; }} h2 {{ font-size: 18px; margin-top: 36px; border-bottom: 1px solid #ddd; }}
p.note {{ color: #555; font-size: 13px; max-width: 1000px; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 8px 0; }}
th, td {{ border: 1px solid #ddd; padding: 4px 10px; text-align: right; }}
th {{ background: #f4f4f4; }} td:first-child, th:first-child {{ text-align: left; }}
tr.def td {{ background: #eef5ff; }}
</style></head><body>
<h1>{0}</h1>
<p>{1} train queries, {2} test queries, {3} experts. Best single expert on test: <b>{4}</b> (accuracy {5:.3f},
${6:.3g}/query). Oracle: accuracy {7:.3f} at ${8:.3g}/query. Default router: <b>{9}</b> ({10}).</p>
)",
                  Escape(title), r.train_queries, r.test_queries, r.experts.size(), Escape(r.best_single.expert),
                  r.best_single.accuracy, r.best_single.cost_per_query, r.oracle.accuracy, r.oracle.cost_per_query,
                  Escape(r.default_router), Escape(r.default_selection));
  if (!r.provenance.empty()) html += fmt::format("<p class=\"note\">Run: {}</p>\n", Escape(r.provenance));
  if (!r.escalation.note.empty()) {
    html += fmt::format("<p class=\"note\">Escalation router (<i>escalate</i>): {}</p>\n", Escape(r.escalation.note));
  }
  if (r.prices_degenerate) {
    html +=
        "<p><b>Warning: the experts' prices are equal (or unknown)</b>: every router spends the same per query, so "
        "the cost axis cannot separate them and no price tiers are shown.</p>\n";
  }
  html +=
      "<h2>1. Accuracy vs cost per query</h2>\n<p class=\"note\">Every router is trained on the train split and "
      "swept over lambda on the test split; points are realised (recorded) accuracy and cost. Grey dots are "
      "single experts.</p>\n";
  html += CostAccuracyFigure(r);
  if (def) {
    html += fmt::format(
        "<h2>2. Accuracy per domain: {} vs best single</h2>\n<p class=\"note\">The default router at "
        "its best operating point within the best single expert's cost per query.</p>\n",
        Escape(def->name));
    html += DomainFigure(r, *def);
    html += fmt::format(
        "<h2>3. Routing share by expert price tier: {}</h2>\n<p class=\"note\">Experts are split "
        "into terciles by mean cost per query on train; at each budget the default router's most "
        "accurate operating point within it.</p>\n",
        Escape(def->name));
    if (r.prices_degenerate) {
      html += "<p class=\"note\">Not shown: the prices are equal, so there are no price tiers.</p>\n";
    } else {
      html += TierFigure(r, *def);
    }
  }
  html +=
      "<h2>4. Universe constructor: S(U) after each greedy pick</h2>\n<p class=\"note\">S(U) = mean over train "
      "queries of the best score among the picked experts (Leeroo equation 2, lazy greedy, k = pool size).</p>\n";
  html += UniverseFigure(r);
  html +=
      "<h2>5. Metrics</h2>\n<p class=\"note\">AIQ: area under the non-decreasing convex hull of the (cost, "
      "accuracy) curve, flat to the largest cost compared, divided by it. Cost at 95%: lowest cost reaching 95% "
      "of the best single's accuracy, as a multiple of its cost. APGR/CPT (two experts only): RouteLLM's "
      "average performance gap recovered and call-percentage thresholds.</p>\n";
  if (r.bootstrap > 0) {
    html += fmt::format(
        "<p class=\"note\">Brackets: 95% bootstrap intervals (2.5th&ndash;97.5th percentiles over {} resamples of "
        "the test queries, drawn with replacement; the best single expert re-chosen on each).</p>\n",
        r.bootstrap);
  }
  html += MetricsTable(r);
  if (def && !r.calibration.empty()) {
    html += fmt::format(
        "<h2>6. Calibration of {}</h2>\n<p class=\"note\">Per expert, test cells with a recorded score binned "
        "into {} equal bins of predicted score; each point is a bin's mean predicted vs mean realised score. "
        "Points below the dashed diagonal: the router is over-confident for that expert.</p>\n",
        Escape(def->name), BenchResult::kCalibrationBins);
    html += CalibrationFigure(r);
  }
  if (def && !r.domain_share.empty()) {
    html += fmt::format(
        "<h2>7. Routing shares per domain: {}</h2>\n<p class=\"note\">The default router at its operating "
        "point (lambda {}, accuracy {}, ${:.3g}/query): the share of each domain's test queries sent to each "
        "expert.</p>\n",
        Escape(def->name), Num(def->choice_lambda), Fix(def->choice_accuracy), def->choice_cost_per_query);
    html += DomainShareTable(r);
  }
  html += "</body></html>\n";
  return html;
}

}  // namespace baton
