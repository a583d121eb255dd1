#ifndef ODDONE_CLI_TRAIN_H
#define ODDONE_CLI_TRAIN_H

/* Runs `oddone train` with the arguments after "train"; returns the exit
 * status (0 success, 1 failure, 2 usage error). */
int od_cli_train(int argc, char **argv);

#endif
