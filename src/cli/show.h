/* The `show` subcommand of the oddone program. */
#ifndef ODDONE_CLI_SHOW_H
#define ODDONE_CLI_SHOW_H

/* Runs `oddone show` with the arguments after "show"; returns the exit
 * status (0 success, 1 failure, 2 usage error). */
int od_cli_show(int argc, char **argv);

#endif
