/* ROC curves as SVG: a square plot of TPR against FPR in [0, 1] with grid
 * lines every 0.2, the chance diagonal and a legend in the lower right. */
#include "eval/roc_svg.h"

#include <stdio.h>

#include "io/atomic_file.h"

/* Plot geometry in SVG user units (pixels). */
#define PLOT_LEFT 60.0
#define PLOT_TOP 40.0
#define PLOT_SIZE 360.0
#define IMAGE_WIDTH 450
#define IMAGE_HEIGHT 450

static const char *const SERIES_COLOURS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
#define COLOUR_COUNT (sizeof SERIES_COLOURS / sizeof SERIES_COLOURS[0])

static double plot_x(double fpr)
{
    return PLOT_LEFT + fpr * PLOT_SIZE;
}

static double plot_y(double tpr)
{
    return PLOT_TOP + (1.0 - tpr) * PLOT_SIZE;
}

/* Writes text with the five XML special characters escaped. */
static void write_escaped(FILE *stream, const char *text)
{
    for (const char *c = text; *c != '\0'; c++) {
        switch (*c) {
        case '&':
            fputs("&amp;", stream);
            break;
        case '<':
            fputs("&lt;", stream);
            break;
        case '>':
            fputs("&gt;", stream);
            break;
        case '"':
            fputs("&quot;", stream);
            break;
        case '\'':
            fputs("&apos;", stream);
            break;
        default:
            fputc(*c, stream);
        }
    }
}

static void write_axes(FILE *stream, const char *title)
{
    fprintf(stream, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n", IMAGE_WIDTH,
            IMAGE_HEIGHT);
    for (int k = 0; k <= 5; k++) {
        double v = k / 5.0;
        fprintf(stream,
                "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n"
                "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n",
                plot_x(v), plot_y(0.0), plot_x(v), plot_y(1.0), plot_x(0.0), plot_y(v), plot_x(1.0), plot_y(v));
        fprintf(stream, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%.1f</text>\n", plot_x(v),
                plot_y(0.0) + 18.0, v);
        fprintf(stream, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%.1f</text>\n", plot_x(0.0) - 6.0,
                plot_y(v) + 4.0, v);
    }
    fprintf(stream, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"black\"/>\n",
            PLOT_LEFT, PLOT_TOP, PLOT_SIZE, PLOT_SIZE);
    fprintf(stream,
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#888888\" stroke-dasharray=\"4 4\"/>\n",
            plot_x(0.0), plot_y(0.0), plot_x(1.0), plot_y(1.0));
    fprintf(stream, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">False positive rate</text>\n",
            PLOT_LEFT + PLOT_SIZE / 2.0, plot_y(0.0) + 38.0);
    fprintf(stream,
            "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" transform=\"rotate(-90 %.2f %.2f)\">"
            "True positive rate</text>\n",
            PLOT_LEFT - 40.0, PLOT_TOP + PLOT_SIZE / 2.0, PLOT_LEFT - 40.0, PLOT_TOP + PLOT_SIZE / 2.0);
    if (title != NULL) {
        fprintf(stream, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-weight=\"bold\">",
                PLOT_LEFT + PLOT_SIZE / 2.0, PLOT_TOP - 14.0);
        write_escaped(stream, title);
        fputs("</text>\n", stream);
    }
}

static void write_series(FILE *stream, const od_roc_series *series, int index, int count)
{
    const char *colour = SERIES_COLOURS[(size_t)index % COLOUR_COUNT];
    const od_roc_curve *curve = series->curve;
    if (curve != NULL && curve->count > 0) {
        fprintf(stream, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colour);
        for (int64_t i = 0; i < curve->count; i++)
            fprintf(stream, "%s%.2f,%.2f", i > 0 ? " " : "", plot_x(curve->fpr[i]), plot_y(curve->tpr[i]));
        fputs("\"/>\n", stream);
    }

    /* Legend rows stack upwards from the lower right corner. The text is
     * right-aligned with its colour swatch after it, so a long name grows
     * into the plot instead of past the image's edge. */
    double y = plot_y(0.0) - 12.0 - 18.0 * (count - 1 - index);
    double x = plot_x(1.0) - 28.0;
    fprintf(stream, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"2\"/>\n", x,
            y - 4.0, x + 20.0, y - 4.0, colour);
    fprintf(stream, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">", x - 6.0, y);
    write_escaped(stream, series->name != NULL ? series->name : "");
    if (curve == NULL || curve->count == 0)
        fputs(" (AUROC undefined: one class)", stream);
    else if (series->auroc.status == OD_METRIC_DEFINED)
        fprintf(stream, " (AUROC %.4f)", series->auroc.value);
    fputs("</text>\n", stream);
}

int od_roc_svg_write(const char *path, const od_roc_series *series, int count, const char *title, od_error *err)
{
    if (path == NULL)
        return od_fail(err, "roc svg: output path missing (NULL)");
    if (series == NULL || count < 1)
        return od_fail(err, "%s: roc svg needs at least one curve, got %d", path, count);
    for (int s = 0; s < count; s++) {
        const od_roc_curve *curve = series[s].curve;
        if (curve != NULL && curve->count > 0 && (curve->fpr == NULL || curve->tpr == NULL))
            return od_fail(err, "%s: curve %d has %lld points but no fpr or tpr array", path, s,
                           (long long)curve->count);
    }

    od_atomic_file file;
    if (od_atomic_open(&file, path, err) != 0)
        return -1;
    FILE *stream = file.stream;
    fprintf(stream,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n",
            IMAGE_WIDTH, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_HEIGHT);
    write_axes(stream, title);
    for (int s = 0; s < count; s++)
        write_series(stream, &series[s], s, count);
    fputs("</svg>\n", stream);
    return od_atomic_commit(&file, err);
}
