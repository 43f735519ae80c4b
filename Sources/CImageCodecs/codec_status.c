#include "codec_status.h"

#include <stdarg.h>
#include <stdio.h>

void ic_set_status(ic_status *st, ic_code code, const char *fmt, ...) {
    st->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->message, sizeof st->message, fmt, ap);
    va_end(ap);
}
