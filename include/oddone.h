/* oddone: multi-view odd-one-out anomaly detection.
 *
 * Given several posed views of a table holding instances of one object,
 * oddone finds the instances and scores each one by how much it differs
 * from the others. This header is the library's public interface; link
 * with `pkg-config --libs oddone`.
 *
 * NOTE: the detector itself is not written yet. This version of the header
 * exposes the library's version and thread control only; the scene, model
 * and detection calls will be added here as those parts land. */
#ifndef ODDONE_H
#define ODDONE_H

#ifdef __cplusplus
extern "C" {
#endif

#define ODDONE_VERSION_MAJOR 0
#define ODDONE_VERSION_MINOR 1
#define ODDONE_VERSION_PATCH 0

/* Returns the library's version as "MAJOR.MINOR.PATCH". */
const char *oddone_version(void);

/* Sets the number of CPU threads used by every later call (OpenMP and
 * oneDNN share one pool); 0 or less keeps the default (OMP_NUM_THREADS,
 * else one per core). Results are bit-identical for a fixed thread count. */
void oddone_set_num_threads(int count);

#ifdef __cplusplus
}
#endif

#endif
