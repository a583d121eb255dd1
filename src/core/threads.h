/* Thread count for OpenMP loops and oneDNN (which uses the same OpenMP pool). */
#ifndef ODDONE_CORE_THREADS_H
#define ODDONE_CORE_THREADS_H

/* Sets the number of threads; count <= 0 keeps OpenMP's default. */
void od_set_num_threads(int count);
int od_get_num_threads(void);

#endif
