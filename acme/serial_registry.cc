#include "acme/serial_registry.h"
