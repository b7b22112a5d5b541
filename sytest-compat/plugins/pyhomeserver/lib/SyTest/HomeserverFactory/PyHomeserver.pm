# SyTest driver for this project's homeserver: the factory SyTest selects with `-I PyHomeserver`.
#
# Options: -d DIR (the project checkout, default: the checkout this plugin lives in),
# --python PATH (default: python3), --hs-impl-name NAME (what `implementation_specific`
# tests match; default: pyhomeserver), -E ARG (passed on to `python -m homeserver`).

use strict;
use warnings;

require SyTest::Homeserver::PyHomeserver;

package SyTest::HomeserverFactory::PyHomeserver;
use base qw( SyTest::HomeserverFactory );

use Cwd qw( abs_path );
use File::Basename qw( dirname );

sub _init
{
   my $self = shift;

   # plugins/pyhomeserver/lib/SyTest/HomeserverFactory/PyHomeserver.pm -> the project checkout
   my $checkout = abs_path( dirname( __FILE__ ) . "/../../../../../.." );
   $self->{args} = {
      project_dir => $checkout,
      python      => "python3",
      impl_name   => "pyhomeserver",
      extra_args  => [],
   };

   $self->SUPER::_init( @_ );
}

sub implementation_name
{
   my $self = shift;
   return $self->{args}{impl_name};
}

sub get_options
{
   my $self = shift;

   return (
      'd|homeserver-directory=s' => \$self->{args}{project_dir},
      'python=s'                 => \$self->{args}{python},
      'hs-impl-name=s'           => \$self->{args}{impl_name},
      'E=s@'                     => $self->{args}{extra_args},
      $self->SUPER::get_options(),
   );
}

sub print_usage
{
   print STDERR <<USAGE
   -d, --homeserver-directory DIR  - the homeserver checkout (default: the one holding this plugin)
       --python PATH               - the Python interpreter to run it with
       --hs-impl-name NAME         - implementation name for implementation-specific tests
   -E ARG                          - extra argument for `python -m homeserver`
USAGE
}

sub create_server
{
   my $self = shift;
   my %params = ( @_, %{ $self->{args} } );
   return SyTest::Homeserver::PyHomeserver->new( %params );
}

1;
