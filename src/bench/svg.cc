#include "bench/svg.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace baton::svg {

std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Num(double v) {
  if (std::isnan(v)) return "-";
  if (v == 0) return "0";
  const double a = std::fabs(v);
  if (a >= 1e-3 && a < 1e5) {
    std::string s = fmt::format("{:.4g}", v);
    return s;
  }
  return fmt::format("{:.2g}", v);
}

double Scale::Map(double v) const {
  double t;
  if (log) {
    const double l = std::log10(std::max(lo, 1e-300));
    const double h = std::log10(std::max(hi, 1e-300));
    t = h == l ? 0.5 : (std::log10(std::max(v, 1e-300)) - l) / (h - l);
  } else {
    t = hi == lo ? 0.5 : (v - lo) / (hi - lo);
  }
  return px_lo + t * (px_hi - px_lo);
}

std::vector<double> Scale::Ticks() const {
  std::vector<double> ticks;
  if (log) {
    const int d0 = static_cast<int>(std::floor(std::log10(lo))), d1 = static_cast<int>(std::ceil(std::log10(hi)));
    const bool dense = d1 - d0 <= 3;
    for (int d = d0; d <= d1; ++d) {
      for (double m : {1.0, 2.0, 5.0}) {
        if (m != 1.0 && !dense) continue;
        const double v = m * std::pow(10.0, d);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push_back(v);
      }
    }
    return ticks;
  }
  const double span = hi - lo;
  if (!(span > 0)) return {lo};
  const double raw = span / 6, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  }
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    ticks.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return ticks;
}

SvgWriter::SvgWriter(double width, double height) : width_(width), height_(height) {}

void SvgWriter::Line(double x1, double y1, double x2, double y2, std::string_view stroke, double width,
                     std::string_view dash) {
  body_ += fmt::format(R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}" stroke-width="{}")", x1, y1,
                       x2, y2, stroke, width);
  if (!dash.empty()) body_ += fmt::format(R"( stroke-dasharray="{}")", dash);
  body_ += "/>\n";
}

void SvgWriter::Polyline(const std::vector<std::pair<double, double>>& pts, std::string_view stroke, double width,
                         std::string_view dash) {
  if (pts.empty()) return;
  body_ += R"(<polyline fill="none" points=")";
  for (const auto& [x, y] : pts) body_ += fmt::format("{:.1f},{:.1f} ", x, y);
  body_ += fmt::format(R"(" stroke="{}" stroke-width="{}" stroke-linejoin="round")", stroke, width);
  if (!dash.empty()) body_ += fmt::format(R"( stroke-dasharray="{}")", dash);
  body_ += "/>\n";
}

void SvgWriter::Circle(double x, double y, double r, std::string_view fill, std::string_view stroke) {
  body_ += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="{:.1f}" fill="{}" stroke="{}"/>)"
                       "\n",
                       x, y, r, fill, stroke);
}

void SvgWriter::Rect(double x, double y, double w, double h, std::string_view fill, std::string_view title) {
  body_ += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}">)", x, y,
                       std::max(0.0, w), std::max(0.0, h), fill);
  if (!title.empty()) body_ += fmt::format("<title>{}</title>", Escape(title));
  body_ += "</rect>\n";
}

void SvgWriter::Marker(std::string_view shape, double x, double y, double size, std::string_view fill,
                       std::string_view title) {
  const double s = size;
  std::string path;
  if (shape == "square") {
    path = fmt::format("M{:.1f},{:.1f}h{:.1f}v{:.1f}h{:.1f}z", x - s, y - s, 2 * s, 2 * s, -2 * s);
  } else if (shape == "diamond") {
    path = fmt::format("M{:.1f},{:.1f}L{:.1f},{:.1f}L{:.1f},{:.1f}L{:.1f},{:.1f}z", x, y - 1.3 * s, x + 1.3 * s, y, x,
                       y + 1.3 * s, x - 1.3 * s, y);
  } else if (shape == "triangle") {
    path = fmt::format("M{:.1f},{:.1f}L{:.1f},{:.1f}L{:.1f},{:.1f}z", x, y - 1.3 * s, x + 1.2 * s, y + s, x - 1.2 * s,
                       y + s);
  } else if (shape == "star") {
    for (int i = 0; i < 10; ++i) {
      const double r = (i % 2 == 0) ? 1.6 * s : 0.7 * s, a = -M_PI / 2 + i * M_PI / 5;
      path += fmt::format("{}{:.1f},{:.1f}", i == 0 ? "M" : "L", x + r * std::cos(a), y + r * std::sin(a));
    }
    path += "z";
  } else {
    body_ += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="{:.1f}" fill="{}" stroke="#fff" stroke-width="0.8">)", x,
                         y, s, fill);
    if (!title.empty()) body_ += fmt::format("<title>{}</title>", Escape(title));
    body_ += "</circle>\n";
    return;
  }
  body_ += fmt::format(R"(<path d="{}" fill="{}" stroke="#fff" stroke-width="0.8">)", path, fill);
  if (!title.empty()) body_ += fmt::format("<title>{}</title>", Escape(title));
  body_ += "</path>\n";
}

void SvgWriter::Text(double x, double y, std::string_view text, double size, std::string_view anchor,
                     std::string_view fill, double rotate, bool bold) {
  body_ +=
      fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="{}" text-anchor="{}" fill="{}")", x, y, size, anchor, fill);
  if (rotate != 0) body_ += fmt::format(R"x( transform="rotate({} {:.1f} {:.1f})")x", rotate, x, y);
  if (bold) body_ += R"( font-weight="bold")";
  body_ += fmt::format(">{}</text>\n", Escape(text));
}

void SvgWriter::Axes(const Scale& x, const Scale& y, std::string_view x_label, std::string_view y_label) {
  const double x0 = std::min(x.px_lo, x.px_hi), x1 = std::max(x.px_lo, x.px_hi);
  const double y0 = std::min(y.px_lo, y.px_hi), y1 = std::max(y.px_lo, y.px_hi);
  for (double v : x.Ticks()) {
    const double px = x.Map(v);
    Line(px, y0, px, y1, "#e4e4e4");
    Line(px, y1, px, y1 + 5, "#444");
    Text(px, y1 + 18, Num(v), 11, "middle", "#444");
  }
  for (double v : y.Ticks()) {
    const double py = y.Map(v);
    Line(x0, py, x1, py, "#e4e4e4");
    Line(x0 - 5, py, x0, py, "#444");
    Text(x0 - 8, py + 4, Num(v), 11, "end", "#444");
  }
  body_ += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="none" stroke="#444"/>)"
                       "\n",
                       x0, y0, x1 - x0, y1 - y0);
  Text((x0 + x1) / 2, y1 + 38, x_label, 13, "middle", "#222");
  Text(x0 - 48, (y0 + y1) / 2, y_label, 13, "middle", "#222", -90);
}

std::string SvgWriter::Finish() const {
  return fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" )"
                     R"(font-family="Helvetica, Arial, sans-serif">)"
                     "\n{2}</svg>\n",
                     width_, height_, body_);
}

}  // namespace baton::svg
