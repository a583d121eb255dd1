/* The `detect` subcommand of the oddone program. */
#ifndef ODDONE_CLI_DETECT_H
#define ODDONE_CLI_DETECT_H

/* Runs `oddone detect` with the arguments after "detect"; returns the exit
 * status (0 success, 1 failure, 2 usage error). */
int od_cli_detect(int argc, char **argv);

#endif
