// A tiny SVG writer for the benchmark report: shapes, text and axes with linear or log scales.
//
// Thread-safety: an SvgWriter is a plain value; use one per thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace baton::svg {

// Escapes &, <, >, " and ' for XML text and attributes.
std::string Escape(std::string_view s);
// Compact number for labels: "0.012", "1.5e-05", "12".
std::string Num(double v);

// Maps data values onto pixels, linearly or on a log10 scale.
struct Scale {
  double lo = 0, hi = 1;        // data range (log: both > 0)
  double px_lo = 0, px_hi = 1;  // pixel range (may be decreasing, e.g. for y)
  bool log = false;
  double Map(double v) const;
  // Round tick values inside [lo, hi]: 1-2-5 steps (linear) or powers of ten, with 2 and 5 when few decades (log).
  std::vector<double> Ticks() const;
};

class SvgWriter {
 public:
  SvgWriter(double width, double height);
  void Line(double x1, double y1, double x2, double y2, std::string_view stroke, double width = 1,
            std::string_view dash = "");
  void Polyline(const std::vector<std::pair<double, double>>& pts, std::string_view stroke, double width = 1.5,
                std::string_view dash = "");
  void Circle(double x, double y, double r, std::string_view fill, std::string_view stroke = "none");
  void Rect(double x, double y, double w, double h, std::string_view fill, std::string_view title = "");
  // A marker: "circle", "square", "diamond", "star", "triangle".
  void Marker(std::string_view shape, double x, double y, double size, std::string_view fill,
              std::string_view title = "");
  void Text(double x, double y, std::string_view text, double size = 12, std::string_view anchor = "start",
            std::string_view fill = "#222", double rotate = 0, bool bold = false);
  // Frame, ticks, grid lines and axis labels for a plot area.
  void Axes(const Scale& x, const Scale& y, std::string_view x_label, std::string_view y_label);
  std::string Finish() const;

 private:
  double width_, height_;
  std::string body_;
};

}  // namespace baton::svg
