#ifndef ODDONE_CLI_EVAL_H
#define ODDONE_CLI_EVAL_H

/* Runs `oddone eval` with the arguments after "eval"; returns the exit
 * status (0 success, 1 failure, 2 usage error). */
int od_cli_eval(int argc, char **argv);

/* Runs `oddone eval --paired A_DIR B_DIR` (eval_paired.c); argv holds the
 * arguments after "eval". Returns the exit status as od_cli_eval does. */
int od_cli_eval_paired(int argc, char **argv);

/* The columns of the per-scene and per-object files that `oddone eval`
 * writes and the paired comparison reads back. */
#define OD_EVAL_SCENES_HEADER                                                                                  \
    "scene,status,views,truth_objects,anomalous,predicted_objects,matched,count_right,box_miou,auroc,top1_hit," \
    "seconds,error"
#define OD_EVAL_OBJECTS_HEADER \
    "scene,truth_index,label,kind,prediction,iou,best_iou,score,predicted,correct,eval_score"

#endif
