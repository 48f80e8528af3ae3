// RenderSimSvg: AIQ on test against paid evaluations, one colour per strategy, one line per seed.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "baton/selfplay_sim.h"
#include "bench/svg.h"

namespace baton {

std::string RenderSimSvg(const std::vector<SimResult>& runs, const std::string& title) {
  const double W = 760, H = 460, left = 70, right = 560, top = 50, bottom = 400;
  double xmax = 1, ymin = 1, ymax = 0;
  for (const SimResult& r : runs) {
    xmax = std::max(xmax, static_cast<double>(r.total_evaluations));
    for (const auto* c : {&r.selfplay, &r.random, &r.all}) {
      for (const SimPoint& p : *c) ymin = std::min(ymin, p.aiq), ymax = std::max(ymax, p.aiq);
    }
  }
  if (ymin > ymax) ymin = 0, ymax = 1;
  const double pad = std::max(0.005, (ymax - ymin) * 0.05);
  svg::Scale x{.lo = 0, .hi = xmax, .px_lo = left, .px_hi = right};
  svg::Scale y{.lo = std::max(0.0, ymin - pad), .hi = std::min(1.0, ymax + pad), .px_lo = bottom, .px_hi = top};
  svg::SvgWriter w(W, H);
  w.Text(left, 24, title, 14, "start", "#222", 0, true);
  w.Axes(x, y, "paid (query, expert) evaluations", "default router's AIQ on test");
  struct Style {
    const char* name;
    const char* color;
    const char* dash;
  };
  const Style styles[] = {{"selfplay", "#1f77b4", ""}, {"random", "#ff7f0e", "5,3"}, {"all", "#555", "2,2"}};
  for (const SimResult& r : runs) {
    const std::vector<SimPoint>* curves[] = {&r.selfplay, &r.random, &r.all};
    for (int s = 0; s < 3; ++s) {
      std::vector<std::pair<double, double>> line;
      for (const SimPoint& p : *curves[s]) line.emplace_back(x.Map(static_cast<double>(p.evaluations)), y.Map(p.aiq));
      w.Polyline(line, styles[s].color, 1.5, styles[s].dash);
      for (size_t i = 0; i < line.size(); ++i) {
        w.Circle(line[i].first, line[i].second, 2, styles[s].color);
      }
    }
    if (!r.all.empty()) {
      const double yy = y.Map(r.all.back().aiq);
      w.Line(left, yy, right, yy, "#bbb", 0.8, "1,3");
    }
    if (r.fraction_to_match_all) {
      const double xx = x.Map(*r.fraction_to_match_all * static_cast<double>(r.total_evaluations));
      w.Line(xx, top, xx, bottom, "#1f77b4", 0.6, "1,3");
    }
  }
  double ly = top + 10;
  for (const Style& s : styles) {
    w.Line(right + 20, ly, right + 50, ly, s.color, 2, s.dash);
    w.Text(right + 58, ly + 4, s.name, 12);
    ly += 20;
  }
  w.Text(right + 20, ly + 4, fmt::format("{} run(s)", runs.size()), 11, "start", "#555");
  ly += 18;
  for (const SimResult& r : runs) {
    w.Text(right + 20, ly + 4,
           fmt::format("match-all: {}", r.fraction_to_match_all ? fmt::format("{:.2f}", *r.fraction_to_match_all)
                                                                : std::string("never")),
           11, "start", "#1f77b4");
    ly += 16;
  }
  return w.Finish();
}

}  // namespace baton
