/* The oddone command-line program: dispatches to one subcommand. */
#include <stdio.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "cli/detect.h"
#include "cli/eval.h"
#include "cli/generate.h"
#include "cli/show.h"
#include "cli/teacher.h"
#include "cli/train.h"
#include "core/threads.h"

static void print_usage(FILE *stream)
{
    fprintf(stream,
            "usage: oddone COMMAND [OPTIONS]\n"
            "\n"
            "Finds the odd one out among several instances of one object seen in posed views.\n"
            "\n"
            "commands:\n"
            "  detect      find the objects of a scene and the odd one among them\n"
            "  eval        run a detector on a dataset split and score it against the ground truth\n"
            "  generate    write synthetic scenes in the release format\n"
            "  show        load a scene, print what was read and draw its boxes on every view\n"
            "  teacher     precompute a frozen 2D teacher's features of every view of a dataset\n"
            "  train       train the learned model on datasets\n"
            "  version     print the version and the libraries in use\n"
            "  help        print this text\n");
}

static int run_version(void)
{
    const dnnl_version_t *dnnl = dnnl_version();
    printf("oddone %s\n", ODDONE_VERSION);
    printf("oneDNN %d.%d.%d (cpu runtime %s)\n", dnnl->major, dnnl->minor, dnnl->patch,
           dnnl->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other");
    printf("threads %d\n", od_get_num_threads());
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const char *command = argv[1];
    if (strcmp(command, "help") == 0 || strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(command, "version") == 0 || strcmp(command, "--version") == 0)
        return run_version();
    if (strcmp(command, "show") == 0)
        return od_cli_show(argc - 2, argv + 2);
    if (strcmp(command, "detect") == 0)
        return od_cli_detect(argc - 2, argv + 2);
    if (strcmp(command, "eval") == 0)
        return od_cli_eval(argc - 2, argv + 2);
    if (strcmp(command, "generate") == 0)
        return od_cli_generate(argc - 2, argv + 2);
    if (strcmp(command, "teacher") == 0)
        return od_cli_teacher(argc - 2, argv + 2);
    if (strcmp(command, "train") == 0)
        return od_cli_train(argc - 2, argv + 2);
    fprintf(stderr, "oddone: unknown command \"%s\"; run \"oddone help\" for the list\n", command);
    return 2;
}
