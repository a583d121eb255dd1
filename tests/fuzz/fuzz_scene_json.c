/* Fuzz target: the JSON scene parsers (the release's scene3d.metadata.json
 * and transforms.json) on the same bytes, then every step that uses what
 * they accept: intrinsics resolution, the frame estimate and the
 * visibility check. Built by scripts/fuzz.sh with libFuzzer, and replayed
 * over tests/fuzz/corpus/scene_json/ by ctest. */
#include <stdint.h>
#include <stdlib.h>

#include "scene/scene.h"
#include "scene/scene_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Image size used for views whose file states none. */
#define FUZZ_WIDTH 64
#define FUZZ_HEIGHT 48

static void use_scene(od_scene *scene)
{
    od_error err;
    for (int v = 0; v < scene->view_count; v++) {
        const od_intrinsics_spec *spec = &scene->views[v].stated;
        int width = spec->width > 0 ? spec->width : FUZZ_WIDTH;
        int height = spec->height > 0 ? spec->height : FUZZ_HEIGHT;
        if (od_scene_resolve_camera(scene, v, width, height, &err) != 0)
            return;
    }
    if (scene->view_count == 0)
        return;
    od_scene_options options = od_scene_options_default();
    if (od_scene_set_frame(scene, &options, &err) != 0)
        return;
    od_scene_mark_truncated(scene);
    od_scene_check_visibility(scene, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    od_error err;
    od_scene *release = od_scene_new(NULL);
    if (release == NULL)
        return 0;
    release->format = OD_SCENE_FORMAT_RELEASE;
    release->metadata_path = od_scene_strdup("scene3d.metadata.json");
    if (release->metadata_path != NULL &&
        od_scene_parse_release_metadata(release, (const char *)data, size, "scene3d.metadata.json", &err) == 0)
        use_scene(release);
    od_scene_free(release);

    od_scene *transforms = od_scene_new(NULL);
    if (transforms == NULL)
        return 0;
    transforms->format = OD_SCENE_FORMAT_TRANSFORMS;
    transforms->metadata_path = od_scene_strdup("transforms.json");
    if (transforms->metadata_path != NULL &&
        od_scene_parse_transforms(transforms, (const char *)data, size, "transforms.json", &err) == 0)
        use_scene(transforms);
    od_scene_free(transforms);
    return 0;
}
