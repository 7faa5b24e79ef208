// `accel launch` without the rest of accel: calls accel::launcher::launch_main on its arguments.
// The integration tests run it as a real launcher process (to signal it, SIGKILL it, ...).
#include <accel/launcher/cli.h>

#include <string>
#include <vector>

int main(int argc, char** argv) {
  return accel::launcher::launch_main(std::vector<std::string>(argv + 1, argv + argc));
}
