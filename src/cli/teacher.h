#ifndef ODDONE_CLI_TEACHER_H
#define ODDONE_CLI_TEACHER_H

/* Runs `oddone teacher` with the arguments after "teacher"; returns the
 * exit status (0 success, 1 failure, 2 usage error). */
int od_cli_teacher(int argc, char **argv);

#endif
