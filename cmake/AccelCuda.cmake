# CUDA builds against a pip torch wheel (a "+cuXYZ" torch found through CMAKE_PREFIX_PATH).
#
# accel_cuda_before_torch()   call before find_package(Torch): points torch's CUDA detection at a
#                             real toolkit and keeps it working with older CMake.
# accel_cuda_after_torch()    call after find_package(Torch): headers the wheel needs that a
#                             minimal toolkit lacks, C++20 for .cu files, and a summary line.
#
# Everything here is a no-op for a CPU torch (torch's config never looks at these variables then).

# The toolkit: CUDA_TOOLKIT_ROOT_DIR if given, else CUDAToolkit_ROOT / CUDA_HOME / CUDA_PATH /
# /usr/local/cuda, else the folder above `nvcc` on PATH. A folder counts only if it has both
# bin/nvcc and include/cuda_runtime.h: torch's FindCUDA takes the folder above the first nvcc on
# PATH, and a wrapper script such as /usr/local/bin/nvcc would make that /usr/local.
macro(accel_cuda_before_torch)
  if(NOT DEFINED CUDA_TOOLKIT_ROOT_DIR)
    set(_accel_cuda_candidates ${CUDAToolkit_ROOT} $ENV{CUDAToolkit_ROOT} $ENV{CUDA_HOME} $ENV{CUDA_PATH}
                               /usr/local/cuda)
    find_program(_accel_nvcc_on_path nvcc)
    if(_accel_nvcc_on_path)
      get_filename_component(_accel_nvcc_real "${_accel_nvcc_on_path}" REALPATH)
      get_filename_component(_accel_nvcc_bin "${_accel_nvcc_real}" DIRECTORY)
      get_filename_component(_accel_nvcc_root "${_accel_nvcc_bin}" DIRECTORY)
      list(APPEND _accel_cuda_candidates "${_accel_nvcc_root}")
    endif()
    unset(_accel_nvcc_on_path CACHE)
    foreach(_c IN LISTS _accel_cuda_candidates)
      if(_c AND EXISTS "${_c}/bin/nvcc" AND EXISTS "${_c}/include/cuda_runtime.h")
        set(CUDA_TOOLKIT_ROOT_DIR "${_c}" CACHE PATH "CUDA toolkit used with a CUDA torch")
        break()
      endif()
    endforeach()
  endif()
  if(DEFINED CUDA_TOOLKIT_ROOT_DIR AND NOT DEFINED CMAKE_CUDA_COMPILER AND EXISTS "${CUDA_TOOLKIT_ROOT_DIR}/bin/nvcc")
    set(CMAKE_CUDA_COMPILER "${CUDA_TOOLKIT_ROOT_DIR}/bin/nvcc" CACHE FILEPATH "nvcc")
  endif()
  # CMake before 3.25.2 has no flag for CUDA C++20; torch sets CMAKE_CUDA_STANDARD to the C++
  # standard (20) and its GPU auto-detection try_run then fails to configure. A fixed list of
  # architectures skips that probe (it only feeds torch's legacy CUDA_NVCC_FLAGS).
  if(CMAKE_VERSION VERSION_LESS 3.25.2 AND NOT DEFINED TORCH_CUDA_ARCH_LIST
     AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
    set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
  endif()
endmacro()

macro(accel_cuda_after_torch)
  if(ACCEL_HAS_CUDA)
    # A pip CUDA wheel ships the CUDA library headers its own headers include (cusparse.h,
    # cublas_v2.h, nccl.h, cudnn.h) under site-packages/nvidia/*/include, matching the libraries it
    # loads; a minimal toolkit (nvcc and cudart only) lacks them. They go after the toolkit's
    # folders, so a full toolkit's headers win.
    file(GLOB _accel_wheel_cuda_includes LIST_DIRECTORIES true "${TORCH_INSTALL_PREFIX}/../nvidia/*/include")
    set(_accel_added "")
    foreach(_d IN LISTS _accel_wheel_cuda_includes)
      get_filename_component(_d "${_d}" ABSOLUTE)
      set_property(TARGET torch APPEND PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${_d}")
      list(APPEND _accel_added "${_d}")
    endforeach()
    if(_accel_added)
      message(STATUS "  CUDA headers from the torch wheel: ${_accel_added}")
    endif()
    # .cu sources are C++20 like the rest (torch's headers need it); see accel_cuda_before_torch.
    if(CMAKE_CUDA_COMPILER_LOADED AND NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    endif()
    # torch turns CMAKE_CUDA_ARCHITECTURES off and passes its own -gencode flags to its legacy
    # FindCUDA; accel's .cu targets get the same architectures (sm_XX from those flags).
    string(REGEX MATCHALL "code=sm_[0-9]+a?" _accel_sm "${NVCC_FLAGS_EXTRA}")
    string(REPLACE "code=sm_" "" ACCEL_CUDA_ARCHITECTURES "${_accel_sm}")
    list(REMOVE_DUPLICATES ACCEL_CUDA_ARCHITECTURES)
    if(NOT ACCEL_CUDA_ARCHITECTURES)
      set(ACCEL_CUDA_ARCHITECTURES 80 90)
    endif()
    set(ACCEL_CUDA_SUMMARY "nvcc ${CMAKE_CUDA_COMPILER_VERSION} (${CMAKE_CUDA_COMPILER}), .cu architectures ${ACCEL_CUDA_ARCHITECTURES}")
  endif()
endmacro()
