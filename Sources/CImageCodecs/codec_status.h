// Shared by the codec wrappers, not part of the module's interface.
#ifndef CODEC_STATUS_H
#define CODEC_STATUS_H

#include "image_codecs.h"

// Sets st's code and its message from a printf format (cut to the message buffer).
void ic_set_status(ic_status *st, ic_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
