/* Finds the odd object of a scene through the public API (oddone.h).
 *
 *     detect_example SCENE [MODEL]
 *
 * With MODEL it runs the learned detector from that model file, without
 * it the training-free detector. The weights of the 2D networks are read
 * from models/cache/ under the working folder. Prints one line per object
 * and exits 1 with the library's message when anything fails. */
#include <stdio.h>

#include <oddone.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: detect_example SCENE [MODEL]\n");
        return 2;
    }
    const char *scene = argv[1];
    oddone_detector *detector = argc == 3 ? oddone_open_model(argv[2], NULL) : oddone_open_compare(NULL);
    if (detector == NULL) {
        fprintf(stderr, "detect_example: %s\n", oddone_last_error());
        return 1;
    }

    oddone_result *result = oddone_detect(detector, scene, NULL, 0);
    if (result == NULL) {
        fprintf(stderr, "detect_example: %s\n", oddone_last_error());
        oddone_detector_free(detector);
        return 1;
    }

    int count = oddone_result_object_count(result);
    printf("%d objects in %s (oddone %s)\n", count, scene, oddone_version());
    for (int i = 0; i < count; i++) {
        oddone_object object;
        if (oddone_result_object(result, i, &object) != 0)
            break;
        printf("object %d: %-6s score %.4f  centre (%.3f, %.3f, %.3f)  size (%.3f, %.3f, %.3f)  yaw %.3f rad\n", i,
               object.odd ? "odd" : "normal", object.has_score ? object.score : 0.0, object.center[0],
               object.center[1], object.center[2], object.size[0], object.size[1], object.size[2], object.yaw);
    }

    oddone_result_free(result);
    oddone_detector_free(detector);
    return 0;
}
