/* ROC curves as a standalone SVG image. */
#ifndef ODDONE_EVAL_ROC_SVG_H
#define ODDONE_EVAL_ROC_SVG_H

#include "core/error.h"
#include "eval/metrics.h"

/* One curve of the plot; name appears in the legend (XML-escaped). */
typedef struct od_roc_series {
    const od_roc_curve *curve;
    const char *name;
    od_metric auroc; /* printed beside the name when defined */
} od_roc_series;

/* Writes the curves (count >= 1) with the chance diagonal into an SVG file
 * at path, atomically, so a failed write leaves no partial file. An empty
 * curve (one class only) is listed in the legend as undefined and not
 * drawn. title may be NULL. Numbers are written with the C locale's
 * decimal point, so callers must not switch LC_NUMERIC. */
int od_roc_svg_write(const char *path, const od_roc_series *series, int count, const char *title, od_error *err);

#endif
