/* Logging to stderr. Every line starts with the module that wrote it
 * ("dbscan: 4 clusters"). The level is the only global state in oddone. */
#ifndef ODDONE_CORE_LOG_H
#define ODDONE_CORE_LOG_H

typedef enum od_log_level {
    OD_LOG_QUIET = 0,
    OD_LOG_ERROR = 1,
    OD_LOG_WARN = 2,
    OD_LOG_INFO = 3,
    OD_LOG_DEBUG = 4,
} od_log_level;

void od_log_set_level(od_log_level level);
od_log_level od_log_get_level(void);

void od_log(od_log_level level, const char *module, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

#define od_log_error(module, ...) od_log(OD_LOG_ERROR, module, __VA_ARGS__)
#define od_log_warn(module, ...) od_log(OD_LOG_WARN, module, __VA_ARGS__)
#define od_log_info(module, ...) od_log(OD_LOG_INFO, module, __VA_ARGS__)
#define od_log_debug(module, ...) od_log(OD_LOG_DEBUG, module, __VA_ARGS__)

#endif
