# Helpers shared by src/, tests/, examples/ and bench/.
#
# accel_area(NAME [TORCH] [STATIC|SHARED] SOURCES ... [DEPS ...])
#   The library `accel_<NAME>` of one layer. By default an OBJECT library whose objects go into
#   the shared library `accel`; STATIC or SHARED: a library of its own beside it, which links
#   `accel`. TORCH: the layer uses LibTorch and gets the precompiled torch header. DEPS are
#   linked PUBLIC for OBJECT layers (libaccel links their objects), PRIVATE otherwise.
# accel_apply_pch(TARGET)
#   Reuse the precompiled torch header (ACCEL_USE_PCH).

set(ACCEL_INCLUDE_DIR ${PROJECT_SOURCE_DIR}/include)

function(accel_apply_pch target)
  if(ACCEL_USE_PCH)
    if(TARGET accel_pch AND NOT "${target}" STREQUAL "accel_pch")
      target_precompile_headers(${target} REUSE_FROM accel_pch)
      # The PCH is built with -fPIC; executables must use the same flag (not -fPIE) to reuse it.
      get_target_property(type ${target} TYPE)
      if(type STREQUAL "EXECUTABLE")
        set_property(TARGET ${target} PROPERTY POSITION_INDEPENDENT_CODE OFF)
        target_compile_options(${target} PRIVATE -fPIC)
      endif()
    endif()
  endif()
endfunction()

function(accel_area name)
  cmake_parse_arguments(A "TORCH;STATIC;SHARED" "" "SOURCES;DEPS" ${ARGN})
  if(NOT A_SOURCES)
    return()  # a layer with no sources yet
  endif()
  set(kind OBJECT)
  if(A_STATIC)
    set(kind STATIC)
  elseif(A_SHARED)
    set(kind SHARED)
  endif()
  add_library(accel_${name} ${kind} ${A_SOURCES})
  target_include_directories(accel_${name} PUBLIC
    $<BUILD_INTERFACE:${ACCEL_INCLUDE_DIR}> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  foreach(w IN LISTS ACCEL_WARNINGS)
    target_compile_options(accel_${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${w}> $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${w}>)
  endforeach()
  # CUDA sources (only present in A_SOURCES when accel_glob found nvcc and a CUDA torch): C++20,
  # torch's architectures, no precompiled header (that one is for C++).
  set(cu ${A_SOURCES})
  list(FILTER cu INCLUDE REGEX "\\.cu$")
  if(cu)
    set_source_files_properties(${cu} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
    set_target_properties(accel_${name} PROPERTIES CUDA_STANDARD 20 CUDA_STANDARD_REQUIRED ON
                          CUDA_ARCHITECTURES "${ACCEL_CUDA_ARCHITECTURES}")
  endif()
  if(kind STREQUAL "OBJECT")
    target_link_libraries(accel_${name} PUBLIC Threads::Threads ${A_DEPS})
    set_property(GLOBAL APPEND PROPERTY ACCEL_AREAS accel_${name})
  else()
    target_link_libraries(accel_${name} PUBLIC accel PRIVATE ${A_DEPS})
  endif()
  if(A_TORCH)
    target_link_libraries(accel_${name} PUBLIC torch)
    accel_apply_pch(accel_${name})
  endif()
endfunction()
