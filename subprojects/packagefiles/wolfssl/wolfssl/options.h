/* wolfssl/options.h for ringrelay's fallback build of wolfSSL (subprojects/wolfssl.wrap).
 *
 * configure writes this file with the options the library was built with, and code
 * includes it before any other wolfSSL header (ringrelay does). Our build keeps those
 * options in user_settings.h beside the source tree's top, so this file is just that. */
#ifndef WOLFSSL_OPTIONS_H
#define WOLFSSL_OPTIONS_H

#include "user_settings.h"

#endif /* WOLFSSL_OPTIONS_H */
