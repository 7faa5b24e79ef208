// Everything a training loop needs from accel in one include.
#pragma once

#include "accel/accelerator.h"
#include "accel/core/env.h"
#include "accel/core/error.h"
#include "accel/core/logging.h"
#include "accel/core/options.h"
#include "accel/data/loader.h"
#include "accel/data/sampler.h"
#include "accel/distributed/strategy.h"
#include "accel/distributed/unit.h"
#include "accel/precision/autocast.h"
#include "accel/precision/grad_scaler.h"
