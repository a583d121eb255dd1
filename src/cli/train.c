/* `oddone train CONFIG --data DIR --out RUN`: trains the learned model on
 * the split of one or more datasets (model/train.h does the work). */
#include "cli/train.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/threads.h"
#include "model/train.h"

static void print_train_usage(FILE *stream)
{
    fprintf(stream,
            "usage: oddone train CONFIG --data DIR [--data DIR2 ...] --out RUN [OPTIONS]\n"
            "\n"
            "Trains the learned model of the configuration file (e.g. configs/cpu.json) on the scenes of\n"
            "each dataset's split. Stage 1 trains the 3D network to render views from features\n"
            "lifted out of other views; stage 2 trains the matcher and classifier on crops of the frozen\n"
            "3D network's output. The teacher targets come from the caches that \"oddone teacher\"\n"
            "writes under DIR/features/. RUN receives config.json, losses.csv, previews/, the\n"
            "checkpoints and, after stage 2, model.safetensors; rerunning into an existing RUN\n"
            "continues from its last checkpoint.\n"
            "\n"
            "options:\n"
            "  --data DIR          dataset folder (repeat for several, at most %d)\n"
            "  --out RUN           run folder (required)\n"
            "  --stage S           1, 2 or all (default all: stage 1, then stage 2)\n"
            "  --variant V         full, A, B or C: replaces the configuration's variant\n"
            "  --steps N           steps of each stage run, replacing the configuration's schedule\n"
            "  --init CHECKPOINT   stage-1 run folder or parameter file that stage 2 starts from\n"
            "                      (default: RUN's own stage 1)\n"
            "  --resume            continue RUN from its checkpoint; fail when it has none\n"
            "  --split NAME        split of every dataset (default train)\n"
            "  --seed N            seed of the scene order, views, augmentation and weights (default 1)\n"
            "  --weights PATH      MobileNetV2 weights of the frozen encoder (default: the path from\n"
            "                      scripts/fetch_weights.sh)\n"
            "  --threads N         threads (default: OMP_NUM_THREADS or every core)\n"
            "  --quiet             print errors only\n"
            "  -h, --help          print this text\n",
            OD_TRAIN_MAX_DATASETS);
}

static int parse_long(const char *text, long low, long high, long *out)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < low || value > high)
        return -1;
    *out = value;
    return 0;
}

static int parse_variant(const char *text, od_model_variant *variant)
{
    static const char *const names[] = {"full", "A", "B", "C"};
    static const od_model_variant values[] = {OD_MODEL_VARIANT_FULL, OD_MODEL_VARIANT_A, OD_MODEL_VARIANT_B,
                                              OD_MODEL_VARIANT_C};
    for (int i = 0; i < 4; i++)
        if (strcmp(text, names[i]) == 0) {
            *variant = values[i];
            return 0;
        }
    return -1;
}

/* Returns 0 to go on, 1 after --help, 2 on a usage error. */
static int parse_arguments(int argc, char **argv, od_train_options *o, long *threads)
{
    *o = od_train_options_default();
    o->stage = 0;
    *threads = 0;
    const char *init = NULL;
    static const char *const with_value[] = {"--data", "--out",  "--stage", "--variant", "--steps",
                                             "--init", "--split", "--seed", "--weights", "--threads"};
    for (int i = 0; i < argc; i++) {
        const char *argument = argv[i];
        int takes_value = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            takes_value |= strcmp(argument, with_value[k]) == 0;
        const char *value = takes_value && i + 1 < argc ? argv[i + 1] : NULL;
        if (takes_value && value == NULL) {
            fprintf(stderr, "oddone train: %s needs a value; run \"oddone train --help\"\n", argument);
            return 2;
        }
        long number = 0;
        if (strcmp(argument, "-h") == 0 || strcmp(argument, "--help") == 0) {
            print_train_usage(stdout);
            return 1;
        } else if (strcmp(argument, "--data") == 0) {
            if (o->dataset_count == OD_TRAIN_MAX_DATASETS) {
                fprintf(stderr, "oddone train: more than %d --data folders\n", OD_TRAIN_MAX_DATASETS);
                return 2;
            }
            o->datasets[o->dataset_count++] = value;
        } else if (strcmp(argument, "--out") == 0) {
            o->run = value;
        } else if (strcmp(argument, "--stage") == 0) {
            if (strcmp(value, "1") == 0)
                o->stage = 1;
            else if (strcmp(value, "2") == 0)
                o->stage = 2;
            else if (strcmp(value, "all") == 0)
                o->stage = 0;
            else {
                fprintf(stderr, "oddone train: --stage expects 1, 2 or all; got \"%s\"\n", value);
                return 2;
            }
        } else if (strcmp(argument, "--variant") == 0) {
            if (parse_variant(value, &o->variant) != 0) {
                fprintf(stderr, "oddone train: --variant expects full, A, B or C; got \"%s\"\n", value);
                return 2;
            }
            o->variant_set = 1;
        } else if (strcmp(argument, "--steps") == 0) {
            if (parse_long(value, 1, LONG_MAX, &number) != 0) {
                fprintf(stderr, "oddone train: --steps expects a positive integer; got \"%s\"\n", value);
                return 2;
            }
            o->steps = number;
        } else if (strcmp(argument, "--init") == 0) {
            init = value;
        } else if (strcmp(argument, "--split") == 0) {
            o->split = value;
        } else if (strcmp(argument, "--seed") == 0) {
            if (parse_long(value, 0, LONG_MAX, &number) != 0) {
                fprintf(stderr, "oddone train: --seed expects a non-negative integer; got \"%s\"\n", value);
                return 2;
            }
            o->seed = (uint64_t)number;
        } else if (strcmp(argument, "--weights") == 0) {
            o->encoder_weights = value;
        } else if (strcmp(argument, "--threads") == 0) {
            if (parse_long(value, 1, 1024, threads) != 0) {
                fprintf(stderr, "oddone train: --threads expects an integer from 1 to 1024; got \"%s\"\n", value);
                return 2;
            }
        } else if (strcmp(argument, "--resume") == 0) {
            o->resume = 1;
        } else if (strcmp(argument, "--quiet") == 0) {
            o->quiet = 1;
        } else if (argument[0] == '-' && argument[1] != '\0') {
            fprintf(stderr, "oddone train: unknown option %s; run \"oddone train --help\"\n", argument);
            return 2;
        } else if (o->config_path == NULL) {
            o->config_path = argument;
        } else {
            fprintf(stderr, "oddone train: more than one configuration given (%s and %s)\n", o->config_path,
                    argument);
            return 2;
        }
        if (takes_value)
            i++;
    }
    if (o->config_path == NULL) {
        fprintf(stderr, "oddone train: the configuration file is missing; usage: oddone train CONFIG --data DIR "
                        "--out RUN\n");
        return 2;
    }
    if (o->dataset_count == 0) {
        fprintf(stderr, "oddone train: --data is missing; give the dataset folder to train on\n");
        return 2;
    }
    if (o->run == NULL) {
        fprintf(stderr, "oddone train: --out is missing; give the run folder to write\n");
        return 2;
    }
    if (init != NULL && o->stage != 2) {
        fprintf(stderr, "oddone train: --init sets where stage 2 starts, so it needs --stage 2\n");
        return 2;
    }
    o->init = init;
    return 0;
}

int od_cli_train(int argc, char **argv)
{
    od_train_options o;
    long threads = 0;
    const int parsed = parse_arguments(argc, argv, &o, &threads);
    if (parsed == 1)
        return 0;
    if (parsed != 0)
        return parsed;
    /* The scene loader's line per scene would drown the progress lines. */
    od_log_set_level(o.quiet ? OD_LOG_ERROR : OD_LOG_WARN);
    if (threads > 0)
        od_set_num_threads((int)threads);
    od_error err;
    if (od_train_run(&o, &err) != 0) {
        fprintf(stderr, "oddone train: %s\n", err.message);
        return 1;
    }
    return 0;
}
