#ifndef ODDONE_CLI_GENERATE_H
#define ODDONE_CLI_GENERATE_H

/* Runs `oddone generate` with the arguments after "generate"; returns the
 * exit status (0 success, 1 failure, 2 usage error). */
int od_cli_generate(int argc, char **argv);

#endif
