/* The wrappers' recursion guard (hooks.h). */
#include "hooks.h"

__thread int spw_depth;
