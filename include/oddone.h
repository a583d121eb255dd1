/* oddone: multi-view odd-one-out anomaly detection.
 *
 * Given several posed views of a table holding instances of one object,
 * oddone finds the instances and scores each one by how much it differs
 * from the others. This header is the library's public interface; link
 * with `pkg-config --libs oddone`.
 *
 * Usage:
 *     oddone_detector *detector = oddone_open_model("models/oddone-cpu.safetensors", NULL);
 *     if (detector == NULL) { fprintf(stderr, "%s\n", oddone_last_error()); ... }
 *     oddone_result *result = oddone_detect(detector, "path/to/scene", NULL, 0);
 *     for (int i = 0; i < oddone_result_object_count(result); i++) {
 *         oddone_object object;
 *         oddone_result_object(result, i, &object);
 *     }
 *     oddone_result_free(result);
 *     oddone_detector_free(detector);
 *
 * A scene is a folder in one of the formats `oddone show` reads (the
 * release format with scene3d.metadata.json among them). Coordinates are
 * the scene's world frame, in its units (metres for generated scenes),
 * with z up and the floor at z = 0.
 *
 * Errors: a function that fails returns NULL or -1, and oddone_last_error
 * returns its message on the same thread. A detector may be used by one
 * thread at a time; results may be read from any thread. */
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

/* Returns the message of the calling thread's last failed call, or ""
 * when none has failed. The text stays valid until the thread's next
 * failing call. */
const char *oddone_last_error(void);

typedef struct oddone_detector oddone_detector;
typedef struct oddone_result oddone_result;

/* One object found in a scene: an oriented box that rotates about z. */
typedef struct oddone_object {
    double center[3]; /* box centre (x, y, z) */
    double size[3];   /* full extent along the box's own x, y, z axes */
    double yaw;       /* radians from the world x axis to the box's x axis, about z */
    int has_score;    /* 0 when the detector could not score it (compare with one object) */
    double score;     /* model: probability of being odd, in [0, 1]; compare: a distance, larger is odder */
    int odd;          /* 1 when the detector labels the object odd */
    int truncated;    /* 1 when the object reaches the edge of the detector's grid */
} oddone_object;

/* Opens the learned detector from a trained model file (a safetensors
 * file of format "oddone-model-1"). encoder_weights is the file of the model's 2D encoder, or NULL
 * for its default (models/cache/ relative to the working folder). */
oddone_detector *oddone_open_model(const char *model_path, const char *encoder_weights);

/* Opens the training-free detector with its default settings (MobileNetV2
 * features, masks or colour occupancy). teacher_weights NULL means
 * models/cache/mobilenetv2.safetensors relative to the working folder. */
oddone_detector *oddone_open_compare(const char *teacher_weights);

void oddone_detector_free(oddone_detector *detector);

/* Runs the detector on the scene folder's views views[0 .. view_count),
 * or on every view when views is NULL. Returns NULL on failure: an
 * unreadable scene, a view index out of range, an unreadable image. */
oddone_result *oddone_detect(oddone_detector *detector, const char *scene_folder, const int *views,
                             int view_count);

/* Returns the number of objects found, 0 when result is NULL. */
int oddone_result_object_count(const oddone_result *result);

/* Writes object `index` to *object. Returns 0, or -1 when the index is
 * out of range. */
int oddone_result_object(const oddone_result *result, int index, oddone_object *object);

void oddone_result_free(oddone_result *result);

#ifdef __cplusplus
}
#endif

#endif
