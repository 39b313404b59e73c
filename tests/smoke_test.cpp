#include <gtest/gtest.h>

#include "slm/slm.h"

TEST(Smoke, Version) { EXPECT_STREQ(slm::version(), "0.1.0"); }
